package natsauth_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sluice-dev/sluice/ops/natsauth"
)

// Init makes what is missing and keeps the rest: the second run makes
// nothing new but the rotated password.
func ExampleInit() {
	dir, _ := os.MkdirTemp("", "natsauth-example-")
	defer os.RemoveAll(dir)
	o := natsauth.Options{NATSDir: filepath.Join(dir, "nats"), UsersDir: filepath.Join(dir, "users")}
	res, _ := natsauth.Init(o)
	fmt.Println(res.NewPasswords, res.NewCert)
	o.Rotate = []string{"subscriber"}
	res, _ = natsauth.Init(o)
	fmt.Println(res.NewPasswords, res.NewCert)
	fmt.Println(natsauth.InboxPrefix("gateway-a"), natsauth.PasswordVariable("gateway-a"))
	// Output:
	// [gateway-a gateway-b worker-quotes worker-trades subscriber operator] true
	// [subscriber] false
	// _INBOX.gateway.a GATEWAY_A_PASSWORD
}
