package ssmparams

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// store answers GetParameters from a map, as SSM does: unknown names in
// InvalidParameters.
type store struct {
	mu     sync.Mutex
	params map[string]string
	calls  [][]string
	err    error
}

func (s *store) GetParameters(_ context.Context, in *ssm.GetParametersInput, _ ...func(*ssm.Options)) (*ssm.GetParametersOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, in.Names)
	if s.err != nil {
		return nil, s.err
	}
	if !aws.ToBool(in.WithDecryption) {
		return nil, fmt.Errorf("not decrypted")
	}
	out := &ssm.GetParametersOutput{}
	for _, n := range in.Names {
		if v, ok := s.params[n]; ok {
			out.Parameters = append(out.Parameters, types.Parameter{Name: aws.String(n), Value: aws.String(v)})
		} else {
			out.InvalidParameters = append(out.InvalidParameters, n)
		}
	}
	return out, nil
}

func TestResolve(t *testing.T) {
	s := &store{params: map[string]string{"/r/secret": "s3cret", "/r/token": "ghp_x"}}
	environ := map[string]string{
		"RUNBOAT_GITHUB_WEBHOOK_SECRET_SSM_PARAMETER": "/r/secret",
		"RUNBOAT_GITHUB_TOKEN_SSM_PARAMETER":          "/r/token",
		"RUNBOAT_OTHER_TOKEN_SSM_PARAMETER":           "/r/token", // one parameter, two variables
		"RUNBOAT_REPOS":                               "[]",
	}
	before := maps.Clone(environ)
	got, err := Resolve(context.Background(), environ, s)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"RUNBOAT_GITHUB_WEBHOOK_SECRET": "s3cret", "RUNBOAT_GITHUB_TOKEN": "ghp_x", "RUNBOAT_OTHER_TOKEN": "ghp_x", "RUNBOAT_REPOS": "[]"}
	if !maps.Equal(got, want) {
		t.Errorf("Resolve = %v, want %v", got, want)
	}
	if !maps.Equal(environ, before) {
		t.Errorf("Resolve changed its input: %v", environ)
	}
	if len(s.calls) != 1 || len(s.calls[0]) != 2 {
		t.Errorf("calls %v, want one call for the two parameters", s.calls)
	}
}

func TestResolveBatches(t *testing.T) {
	s := &store{params: map[string]string{}}
	environ := map[string]string{}
	for i := range 23 {
		s.params[fmt.Sprintf("/p/%02d", i)] = fmt.Sprint(i)
		environ[fmt.Sprintf("V%02d_SSM_PARAMETER", i)] = fmt.Sprintf("/p/%02d", i)
	}
	got, err := Resolve(context.Background(), environ, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 23 || got["V22"] != "22" || len(s.calls) != 3 {
		t.Errorf("23 parameters: %d values, V22=%q, %d calls; want 23, 22, 3 calls of at most 10", len(got), got["V22"], len(s.calls))
	}
}

func TestResolveErrors(t *testing.T) {
	const value = "the-secret-value"
	for _, tc := range []struct {
		name    string
		environ map[string]string
		err     error
		want    []string
	}{
		{"missing parameter", map[string]string{"A_SSM_PARAMETER": "/p/a", "B_SSM_PARAMETER": "/p/nope"}, nil, []string{"/p/nope"}},
		{"empty name", map[string]string{"A_SSM_PARAMETER": ""}, nil, []string{"A_SSM_PARAMETER is empty"}},
		{"set both ways", map[string]string{"A_SSM_PARAMETER": "/p/a", "A": "x"}, nil, []string{"A is set both"}},
		{"SSM fails", map[string]string{"A_SSM_PARAMETER": "/p/a"}, fmt.Errorf("AccessDeniedException"), []string{"/p/a", "AccessDeniedException"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &store{params: map[string]string{"/p/a": value}, err: tc.err}
			got, err := Resolve(context.Background(), tc.environ, s)
			if err == nil {
				t.Fatalf("Resolve = %v, want an error", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), value) {
				t.Errorf("error %q holds a secret value", err)
			}
		})
	}
}

func TestResolveNothingWanted(t *testing.T) {
	environ := map[string]string{"RUNBOAT_REPOS": "[]"}
	got, err := Resolve(context.Background(), environ, &store{err: fmt.Errorf("not called")})
	if err != nil || !maps.Equal(got, environ) {
		t.Errorf("Resolve = %v, %v; want the environment as it is", got, err)
	}
}

// The client of NewClient speaks SSM's protocol: a signed JSON call of
// GetParameters with decryption, with the session token of Lambda's
// credentials. The server here answers as SSM does (its JSON protocol);
// there is no SSM without network.
func TestNewClientSpeaksSSM(t *testing.T) {
	var seen http.Header
	var body map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = io.WriteString(w, `{"Parameters":[{"Name":"/r/secret","Type":"SecureString","Value":"s3cret","Version":1}],"InvalidParameters":[]}`)
	}))
	defer srv.Close()
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-key")
	t.Setenv("AWS_SESSION_TOKEN", "session-token")
	t.Setenv("AWS_ENDPOINT_URL_SSM", srv.URL)
	c, err := NewClient()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Resolve(context.Background(), map[string]string{"X_SSM_PARAMETER": "/r/secret"}, c)
	if err != nil || got["X"] != "s3cret" {
		t.Fatalf("Resolve = %v, %v", got, err)
	}
	if target := seen.Get("X-Amz-Target"); target != "AmazonSSM.GetParameters" {
		t.Errorf("X-Amz-Target %q", target)
	}
	if auth := seen.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(auth, "/eu-west-1/ssm/aws4_request") {
		t.Errorf("Authorization %q: want a SigV4 signature for ssm in eu-west-1", auth)
	}
	if tok := seen.Get("X-Amz-Security-Token"); tok != "session-token" {
		t.Errorf("X-Amz-Security-Token %q", tok)
	}
	if body["WithDecryption"] != true || fmt.Sprint(body["Names"]) != "[/r/secret]" {
		t.Errorf("request body %v", body)
	}
}

func TestNewClientNeedsCredentials(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	if _, err := NewClient(); err == nil || !strings.Contains(err.Error(), "AWS_REGION") {
		t.Errorf("NewClient without a region: %v", err)
	}
}
