package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"
)

// runHealth probes a URL and exits 0 on 200: the health check of the
// FROM-scratch container image, which has no shell or curl.
func runHealth(args []string) int {
	fs := flag.NewFlagSet("health", flag.ContinueOnError)
	if ok, code := parseOperands(fs, "health", "URL", "Exits 0 when URL answers 200, 1 otherwise (the containers' health check).", args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "sluice health: exactly one URL is required")
		return 2
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fs.Arg(0))
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
