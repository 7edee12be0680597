package judge0test_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/quizstream/quizstream/checker/judge0test"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, f *judge0test.Fake, path string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(f.URL+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func get(t *testing.T, f *judge0test.Fake, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get(f.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

// The fake "runs" programs by their directives, as the package doc says,
// through the plain (not base64) single-submission endpoints.
func TestDirectives(t *testing.T) {
	f := judge0test.Start(t, judge0test.Config{})
	src := "# judge0test: \"a\" -> \"b  \\n\\n\"\n# judge0test: echo\n# judge0test: time 12\n"
	for _, tc := range []struct {
		src, stdin, expected string
		status               int
		stdout               string
	}{
		{src, "a", "b", 3, "b  \n\n"}, // Judge0 ignores trailing spaces and newlines
		{src, "zz", "zz\n", 3, "zz"},  // echo
		{src, "zz", "b", 4, "zz"},
		{"# judge0test: status 6 \"oops\"", "", "x", 6, ""},
		{"no directives", "", "", 4, ""}, // "" against a null stdout, as Judge0 compares
	} {
		code, body := post(t, f, "/submissions", map[string]any{"source_code": tc.src, "language_id": 71, "stdin": tc.stdin, "expected_output": tc.expected})
		var created struct{ Token string }
		if code != http.StatusCreated || json.Unmarshal(body, &created) != nil {
			t.Fatalf("create: %d %s", code, body)
		}
		code, body = get(t, f, "/submissions/"+created.Token+"?fields=status_id,stdout,compile_output,time")
		var got struct {
			StatusID      int     `json:"status_id"`
			Stdout        *string `json:"stdout"`
			CompileOutput *string `json:"compile_output"`
			Time          string  `json:"time"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &got) != nil {
			t.Fatalf("show: %d %s", code, body)
		}
		stdout := ""
		if got.Stdout != nil {
			stdout = *got.Stdout
		}
		if got.StatusID != tc.status || stdout != tc.stdout {
			t.Errorf("%q on %q: status %d stdout %q, want %d %q", tc.src, tc.stdin, got.StatusID, stdout, tc.status, tc.stdout)
		}
		if tc.status == 6 && (got.CompileOutput == nil || *got.CompileOutput != "oops") {
			t.Errorf("compile_output %v, want oops", got.CompileOutput)
		}
		if tc.src == src && got.Time != "0.012" {
			t.Errorf("time %q, want \"0.012\"", got.Time)
		}
	}
}

// Batches: base64 in and out (out broken into 60-character lines, as Ruby
// writes it), null for an unknown token, In Queue then Processing.
func TestBatch(t *testing.T) {
	f := judge0test.Start(t, judge0test.Config{Polls: 2})
	long := strings.Repeat("0123456789", 10)
	enc := base64.StdEncoding.EncodeToString
	code, body := post(t, f, "/submissions/batch?base64_encoded=true", map[string]any{"submissions": []any{
		map[string]any{"source_code": enc([]byte("// judge0test: echo")), "language_id": 60, "stdin": enc([]byte(long))},
		map[string]any{"source_code": enc([]byte("x")), "language_id": 999},
	}})
	var created []map[string]any
	if code != http.StatusCreated || json.Unmarshal(body, &created) != nil || created[0]["token"] == nil || created[1]["language_id"] == nil {
		t.Fatalf("batch create: %d %s", code, body)
	}
	tokens := created[0]["token"].(string) + ",nope"
	var statuses []int
	for range 3 {
		code, body = get(t, f, "/submissions/batch?base64_encoded=true&fields=status,stdout&tokens="+tokens)
		var got struct {
			Submissions []*struct {
				Status struct{ ID int }
				Stdout *string
			}
		}
		if code != http.StatusOK || json.Unmarshal(body, &got) != nil || len(got.Submissions) != 2 || got.Submissions[1] != nil {
			t.Fatalf("batch show: %d %s", code, body)
		}
		statuses = append(statuses, got.Submissions[0].Status.ID)
		if s := got.Submissions[0]; s.Status.ID == 3 {
			if !strings.Contains(*s.Stdout, "\n") {
				t.Errorf("stdout %q: want Ruby's line breaks", *s.Stdout)
			}
			dec, err := base64.StdEncoding.DecodeString(*s.Stdout)
			if err != nil || string(dec) != long {
				t.Errorf("stdout decodes to %q, %v", dec, err)
			}
		}
	}
	if statuses[0] != 1 || statuses[1] != 2 || statuses[2] != 3 {
		t.Fatalf("statuses %v, want 1, 2, 3", statuses)
	}
	if code, _ := get(t, f, "/submissions/batch?fields=nonsense&tokens="+tokens); code != http.StatusBadRequest {
		t.Errorf("invalid fields: %d, want 400", code)
	}
}

func TestAuthAndDown(t *testing.T) {
	f := judge0test.Start(t, judge0test.Config{Token: "t"})
	if code, _ := get(t, f, "/statuses"); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	f.SetDown(true)
	// A fresh connection: on a reused one, Go's transport sends a GET
	// again by itself when the connection closes unanswered.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if _, err := fresh.Get(f.URL + "/statuses"); err == nil {
		t.Fatal("a down fake answered")
	}
	if s := f.Stats(); s.Requests != 2 || s.Refused != 1 || s.Unauthed != 1 {
		t.Fatalf("stats %+v, want 2 requests, 1 refused, 1 unauthorized", s)
	}
	http.DefaultClient.CloseIdleConnections()
}
