// Package composetest tests the local stack of docker-compose.yml with real
// containers: it builds the FROM-scratch images with docker/build.sh, starts
// the stack under a project name of its own, sends quotes through both
// gateways over h2c, scales the quotes group, kills a worker, stops a NATS
// node, and takes the stack down again, checking each time what a user of
// the stack would check. Every request goes to ports published on
// 127.0.0.1.
//
// The package holds tests only:
//
//	go test ./ops/composetest/ -run TestCompose -v -timeout 20m
//
// It skips in -short mode, where no Docker engine answers, and where neither
// `docker compose` nor `docker-compose` is installed. It stands beside the
// data flow like the rest of ops, and drives the stack only from outside:
// HTTP to the gateways, NATS to the cluster, the docker and compose CLIs.
package composetest
