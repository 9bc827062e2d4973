// sealed.js: the browser side of validate.Sealed, with Web Crypto and no
// dependency. It seals messages for the server as compact JWE
// (ECDH-ES+A256KW on P-256, or "dir" with a shared key; A256GCM) and
// opens the server's sealed replies. The package documentation of
// github.com/wsguard/kit/validate describes the format.
//
//	import { sealClient } from "./sealed.js";
//	const client = await sealClient(serverPublicJwk); // {kty:"EC",crv:"P-256",x,y,kid}
//	const ws = new WebSocket(url);
//	ws.onmessage = async (ev) => console.log(await client.open(ev.data));
//	ws.onopen = () => client.send(ws, JSON.stringify({ type: "say", text: "hello" }));
//
// Use one client per connection: sequence numbers count per connection.
// client.send keeps messages in the order they were sealed; if you call
// client.seal yourself, send its results in the order of the calls.
// Web Crypto needs a secure context: an https page, or localhost.

const subtle = globalThis.crypto.subtle;
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

const ALG_ECDH = "ECDH-ES+A256KW";
const ALG_DIR = "dir";
const ENC = "A256GCM";
const TAG = "WSE1";

function b64url(bytes) {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unb64url(s) {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new Error("sealed: not base64url");
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function u32(n) {
  return new Uint8Array([n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
}

// publicJwk keeps only the members the server's profile admits.
function publicJwk(k) {
  return { kty: "EC", crv: "P-256", x: k.x, y: k.y };
}

// kek derives the A256KW key-encryption key from an ECDH shared secret
// with the Concat KDF of RFC 7518 section 4.6 (no apu or apv).
async function kek(privateKey, publicKey, usage) {
  const z = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: publicKey }, privateKey, 256));
  const alg = enc.encode(ALG_ECDH);
  const info = concat(u32(1), z, u32(alg.length), alg, u32(0), u32(0), u32(256));
  const key = new Uint8Array(await subtle.digest("SHA-256", info));
  return subtle.importKey("raw", key, "AES-KW", false, [usage]);
}

function importEC(jwk, usages) {
  return subtle.importKey("jwk", publicJwk(jwk), { name: "ECDH", namedCurve: "P-256" }, false, usages);
}

function payload(dir, seq, body) {
  const bytes = typeof body === "string" ? enc.encode(body) : body;
  return concat(enc.encode(`${TAG} ${dir} ${seq} ${Date.now()}\n`), bytes);
}

// parsePayload checks the decrypted payload: the server's direction and
// a sequence number above the last one.
function parsePayload(pt, last) {
  const nl = pt.indexOf(10);
  if (nl < 0 || nl > 64) throw new Error("sealed: reply refused");
  const head = dec.decode(pt.subarray(0, nl)).split(" ");
  if (head.length !== 4 || head[0] !== TAG || head[1] !== "s" || !/^[1-9][0-9]{0,19}$/.test(head[2])) {
    throw new Error("sealed: reply refused");
  }
  const seq = BigInt(head[2]);
  if (seq <= last) throw new Error("sealed: reply refused");
  return { seq, body: pt.subarray(nl + 1) };
}

// sealClient returns a client for the server key described by the JWK
// server: an EC P-256 public key, or a 32-byte symmetric ("oct") key,
// with the "kid" the server knows it by.
export async function sealClient(server) {
  if (typeof server.kid !== "string" || server.kid === "") throw new Error("sealed: the key needs a kid");
  let alg;
  let serverKey;
  let reply;
  let replyJwk;
  if (server.kty === "EC" && server.crv === "P-256") {
    alg = ALG_ECDH;
    serverKey = await importEC(server, []);
    reply = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"]);
    replyJwk = publicJwk(await subtle.exportKey("jwk", reply.publicKey));
  } else if (server.kty === "oct") {
    alg = ALG_DIR;
    const raw = unb64url(server.k);
    if (raw.length !== 32) throw new Error("sealed: symmetric keys must be 32 bytes");
    serverKey = await subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
  } else {
    throw new Error("sealed: the key is neither EC P-256 nor a symmetric key");
  }
  let seq = 0n;
  let last = 0n;
  let queue = Promise.resolve();

  async function seal(body) {
    seq += 1n;
    const header = { alg, enc: ENC, kid: server.kid };
    let cek;
    let ek = new Uint8Array(0);
    if (alg === ALG_ECDH) {
      const epk = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
      header.epk = publicJwk(await subtle.exportKey("jwk", epk.publicKey));
      if (seq === 1n) header.rpk = replyJwk;
      cek = await subtle.generateKey({ name: "AES-GCM", length: 256 }, true, ["encrypt"]);
      ek = new Uint8Array(await subtle.wrapKey("raw", cek, await kek(epk.privateKey, serverKey, "wrapKey"), "AES-KW"));
    } else {
      cek = serverKey;
    }
    const protectedB64 = b64url(enc.encode(JSON.stringify(header)));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const out = new Uint8Array(await subtle.encrypt(
      { name: "AES-GCM", iv, additionalData: enc.encode(protectedB64), tagLength: 128 },
      cek, payload("c", seq, body)));
    const ct = out.subarray(0, out.length - 16);
    const tag = out.subarray(out.length - 16);
    return [protectedB64, b64url(ek), b64url(iv), b64url(ct), b64url(tag)].join(".");
  }

  async function openBytes(msg) {
    const parts = String(msg).split(".");
    if (parts.length !== 5) throw new Error("sealed: reply refused");
    let header;
    try {
      header = JSON.parse(dec.decode(unb64url(parts[0])));
    } catch {
      throw new Error("sealed: reply refused");
    }
    if (header.alg !== alg || header.enc !== ENC || "zip" in header || "crit" in header) {
      throw new Error("sealed: reply refused");
    }
    let cek;
    try {
      if (alg === ALG_ECDH) {
        const epk = await importEC(header.epk, []);
        cek = await subtle.unwrapKey("raw", unb64url(parts[1]), await kek(reply.privateKey, epk, "unwrapKey"),
          "AES-KW", "AES-GCM", false, ["decrypt"]);
      } else {
        if (header.kid !== server.kid || parts[1] !== "") throw new Error("sealed: reply refused");
        cek = serverKey;
      }
      const pt = new Uint8Array(await subtle.decrypt(
        { name: "AES-GCM", iv: unb64url(parts[2]), additionalData: enc.encode(parts[0]), tagLength: 128 },
        cek, concat(unb64url(parts[3]), unb64url(parts[4]))));
      const { seq: got, body } = parsePayload(pt, last);
      last = got;
      return body;
    } catch {
      // One error whatever failed, as on the server.
      throw new Error("sealed: reply refused");
    }
  }

  return {
    seal,
    // open returns the text of a sealed reply; openBytes its bytes.
    open: async (msg) => dec.decode(await openBytes(msg)),
    openBytes,
    // send seals body and sends it on ws, in the order of the calls; it
    // resolves to the sealed message once sent.
    send(ws, body) {
      const sealed = seal(body);
      queue = queue.then(async () => {
        const msg = await sealed;
        ws.send(msg);
        return msg;
      });
      return queue;
    },
  };
}
