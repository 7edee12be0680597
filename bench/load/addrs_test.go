package load

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Each student connects from its own loopback address.
func TestStudentsConnectFromTheirOwnAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := strings.Cut(r.RemoteAddr, ":")
		w.Header().Set("X-Remote-Host", host)
	}))
	defer srv.Close()
	a := &sourceAddrs{perStudent: 2}
	defer a.close()
	seen := map[string]int{}
	for _, i := range []int{0, 1, 249, 250, 499, 70000} {
		resp, err := a.client(i).Get(srv.URL)
		if err != nil {
			t.Fatalf("student %d: %v", i, err)
		}
		resp.Body.Close()
		host := resp.Header.Get("X-Remote-Host")
		if want := addr(i).String(); host != want {
			t.Errorf("student %d came from %s, want %s", i, host, want)
		}
		seen[host]++
	}
	if len(seen) != 6 {
		t.Errorf("6 students came from %d addresses: %v", len(seen), seen)
	}
}

func TestIsLoopback(t *testing.T) {
	for base, want := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://127.3.2.1": true, "http://localhost:8080": false,
		"http://[::1]:8080": false, "http://192.0.2.1:80": false, "::bad": false,
	} {
		if got := isLoopback(base); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", base, got, want)
		}
	}
}
