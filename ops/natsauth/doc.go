// Package natsauth makes the credentials and the TLS certificate of the
// compose stack's NATS cluster (docker-compose.yml,
// ops/nats/nats-N.secure.conf and auth.conf): one
// random password per user of ops/nats/auth.conf, the bcrypt hashes the
// servers check them against, and a server certificate for the client port
// signed by a CA made for it. `sluice natsauth init` runs it in a one-shot
// service at `docker compose up`, into volumes: nothing secret is in an
// image or in the repository.
//
// It stands beside the data flow, in ops: the subcommand wires it, and no
// sluice process calls it on its way.
package natsauth
