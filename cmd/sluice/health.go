package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

// runHealth probes a URL and exits 0 on 200: the health check of the
// FROM-scratch container image, which has no shell or curl.
func runHealth(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "Usage: sluice health URL   (exits 0 when URL answers 200)")
		return 2
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy: status", resp.Status)
		return 1
	}
	return 0
}
