package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sluice-dev/sluice/gateway/admit"
)

const keysUsage = "Usage: sluice keys hash KEY   (prints the SHA-256 of KEY for the keys file; -- before a KEY that starts with '-')"

// runKeys serves `sluice keys hash KEY`: the SHA-256 to put in a keys file,
// so that the file never holds a key itself.
func runKeys(args []string) int {
	if len(args) == 0 || args[0] != "hash" {
		return verbUsage(args, keysUsage)
	}
	fs := flag.NewFlagSet("keys hash", flag.ContinueOnError)
	if ok, code := parseOperands(fs, "keys hash", "KEY", "Prints the SHA-256 of KEY, to put in the keys file (see --keys-file) instead of the key itself. A KEY that starts with '-' goes after --.", args[1:]); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "sluice keys hash: exactly one KEY is required")
		return 2
	}
	fmt.Println(admit.HashKey(fs.Arg(0)))
	return 0
}
