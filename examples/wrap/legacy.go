package main

import (
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

// This file stands for the handler a team already runs, written with
// gorilla/websocket before anyone thought about abuse. It is kept as it
// was: main.go hardens it from the outside, without touching it.

var upgrader = websocket.Upgrader{
	Subprotocols: []string{"wsguard.v1"},
	// Accepts every Origin: the cross-site WebSocket hijacking hole that
	// wsguard.OriginCheck closes in front of it.
	CheckOrigin: func(*http.Request) bool { return true },
}

func legacyEcho(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		log.Println("upgrade:", err)
		return
	}
	defer conn.Close()
	for {
		mt, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if err := conn.WriteMessage(mt, append([]byte("Server received: "), msg...)); err != nil {
			return
		}
	}
}
