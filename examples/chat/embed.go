package main

import _ "embed"

// The page, its style and its script, inlined into one response at
// start-up so that the page needs no other request and no external asset.
var (
	//go:embed page/index.html
	pageHTML string
	//go:embed page/style.css
	pageCSS string
	//go:embed page/app.js
	pageJS string
)
