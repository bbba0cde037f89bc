package gateway

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/gateway/stream"
	"github.com/sluice-dev/sluice/schemas"
)

// streamsAuth puts the identity checks of publishing in front of the
// subscribers' handler: with a keys file, a subscription needs a key
// (401), a subscribe permission for its type (403) and a token of the
// key's bucket (429); it names the key's client to the stream handler
// ([stream.WithClient]), which bounds the streams each client holds open
// (429 past --stream-max-subscribers-per-key). Without keys it passes
// through: the stream handler's bound per gateway is the only one, since
// a remote address does not tell clients apart (every subscriber behind
// one proxy, load balancer or NAT shares it).
func (s *Server) streamsAuth(next http.Handler) http.Handler {
	if s.adm.opts.Disabled || !s.adm.clients.KeysRequired() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k, ok := schemas.ParseKind(r.PathValue("type"))
		if !ok {
			next.ServeHTTP(w, r) // its 404
			return
		}
		deny := func(p *problem) {
			st := getState()
			s.fail(w, st, p)
			putState(st)
		}
		now := time.Now()
		cl, why, desc := s.adm.clients.Authenticate(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key"), now)
		switch {
		case cl == nil:
			s.adm.deny(why, remoteHost(r.RemoteAddr), desc, now)
			st := getState()
			s.unauthorized(w, st, why, desc)
			putState(st)
			return
		case !cl.MaySubscribe(k):
			s.adm.deny(admit.DenyForbidden, cl.Name, k.String(), now)
			deny(&problem{Status: http.StatusForbidden,
				Detail: fmt.Sprintf("client %q may not subscribe to %s events: add %q to its key's subscribe list (or subscribe:%s to its token's scope)", cl.Name, k, k.String(), k)})
			return
		}
		if ok, retry := cl.Take(now); !ok {
			s.adm.deny(admit.DenyRateLimited, cl.Name, k.String(), now)
			deny(&problem{Status: http.StatusTooManyRequests, RetryAfter: retry,
				Detail: fmt.Sprintf("client %q is over its request rate; subscribe less often", cl.Name)})
			return
		}
		next.ServeHTTP(w, r.WithContext(stream.WithClient(r.Context(), cl.Name)))
	})
}
