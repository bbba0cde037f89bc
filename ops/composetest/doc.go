// Package composetest tests the local stack of docker-compose.yml with real
// containers: it builds the FROM-scratch images with docker/build.sh, starts
// the stack under a project name of its own, sends quotes through both
// gateways over h2c, scales the quotes group, injects faults under a steady
// stream of quotes in durable delivery (the stack's default: kill -9 of a
// worker and of a gateway, stop and start of a NATS node, a partition of a
// node, a full restart with the volumes) and counts, by id, every quote
// answered 202 and every quote in the enriched stream, then recreates the
// gateways and workers in core delivery to bound what a killed worker or a
// stopped node loses there, and takes the stack down again, checking each
// time what a user of the stack would check. Every request goes to ports
// published on 127.0.0.1.
//
// The package holds tests only:
//
//	go test ./ops/composetest/ -run TestCompose -v -timeout 20m
//	SLUICE_FAULTS=all go test ./ops/composetest/ -run TestComposeFaults -v -count=1
//
// The stack's NATS serves TLS only, with one NATS user per role
// (ops/nats/auth.conf): the test's own connections from the host (the tap,
// the store reader, the admin connection) connect as the operator, `sluice
// sub` as the subscriber, each with the password and the CA copied out of
// the natsauth container (docker cp), as a user of the stack would.
// TestCompose's step SecureRoles checks from the host that each role's
// forbidden actions are refused and that the pipeline still works; run
// alone, TestSecureCompose makes the same checks on a stack of its own (it
// skips where TestCompose runs, which makes them on its stack):
//
//	go test ./ops/composetest/ -run TestSecureCompose -v -count=1
//
// The images are built once per test binary, by the first test that needs
// them, and removed when the package's tests end.
//
// SLUICE_FAULTS picks the fault cases (all, none, or a list of worker, node,
// partition, gateway, restart); unset, TestCompose runs the default ones and
// TestComposeFaults skips.
//
// It skips in -short mode, where no Docker engine answers, and where neither
// `docker compose` nor `docker-compose` is installed. It stands beside the
// data flow like the rest of ops, and drives the stack only from outside:
// HTTP to the gateways, NATS to the cluster, the docker and compose CLIs.
package composetest
