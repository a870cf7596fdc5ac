package main

import "net/http"

func (a *api) leaseRoutes(mux *http.ServeMux) {}
