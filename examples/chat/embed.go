package main

import _ "embed"

// The page with its style inlined at start-up, and the page's script,
// served beside the client module it imports: nothing comes from another
// origin.
var (
	//go:embed page/index.html
	pageHTML string
	//go:embed page/style.css
	pageCSS string
	//go:embed page/app.js
	pageJS string
)
