package gateway

import (
	"fmt"
	"net/http"
	"time"

	"github.com/sluice-dev/sluice/gateway/admit"
	"github.com/sluice-dev/sluice/schemas"
)

// streamsAuth puts the identity checks of publishing in front of the
// subscribers' handler: with a keys file, a subscription needs a key
// (401), a subscribe permission for its type (403) and a token of the
// key's bucket (429). Without one, it passes through (the stream handler
// has its own subscriber bound).
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
		cl := s.adm.clients.ByKey(admit.KeyFromHeaders(r.Header.Get("Authorization"), r.Header.Get("X-Api-Key")))
		switch {
		case cl == nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="sluice"`)
			deny(&problem{Status: http.StatusUnauthorized,
				Detail: "a valid API key is required: Authorization: Bearer <key> or X-API-Key: <key>"})
			return
		case !cl.MaySubscribe(k):
			deny(&problem{Status: http.StatusForbidden,
				Detail: fmt.Sprintf("client %q may not subscribe to %s events: add %q to its key's subscribe list", cl.Name, k, k.String())})
			return
		}
		if ok, retry := cl.Take(time.Now()); !ok {
			deny(&problem{Status: http.StatusTooManyRequests, RetryAfter: retry,
				Detail: fmt.Sprintf("client %q is over its request rate; subscribe less often", cl.Name)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
