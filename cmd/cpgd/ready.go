package main

// setReady makes /readyz answer 200: the agent calls it once the data dir
// is loaded and the registrations it holds are back in the registry.
func (a *api) setReady() { a.ready.Store(true) }
