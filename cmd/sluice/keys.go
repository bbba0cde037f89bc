package main

import (
	"fmt"
	"os"

	"github.com/sluice-dev/sluice/gateway/admit"
)

// runKeys serves `sluice keys hash KEY`: the SHA-256 to put in a keys file,
// so that the file never holds a key itself.
func runKeys(args []string) int {
	if len(args) != 2 || args[0] != "hash" {
		fmt.Fprintln(os.Stderr, "Usage: sluice keys hash KEY   (prints the sha256 for the keys file)")
		return 2
	}
	fmt.Println(admit.HashKey(args[1]))
	return 0
}
