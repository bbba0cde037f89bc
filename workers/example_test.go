package workers_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sluice-dev/sluice/enrich"
	"github.com/sluice-dev/sluice/workers"
)

// A quotes worker: reference data from the embedded sample, subjects under
// the default prefix, stopped gracefully on interrupt.
func ExampleNew() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	store := enrich.NewStore()
	store.Replace(enrich.Sample())
	w, err := workers.New(workers.Options{
		Conn:     nc,
		Group:    "quotes",
		Enricher: &enrich.Enricher{Store: store},
		Logger:   slog.New(slog.NewJSONHandler(os.Stderr, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(); err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	<-ctx.Done()

	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Shutdown(shutdownCtx); err != nil {
		log.Printf("shutdown: %v", err)
	}
}
