//go:build !unix

package main

// processAlive cannot tell here: every owner counts as alive, and no store
// is swept.
func processAlive(int) bool { return true }
