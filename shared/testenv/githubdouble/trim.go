//go:build ignore

// Trim writes testdata/openapi.json: the operations of GitHub's REST API
// that the project uses, taken from the dereferenced description of
// api.github.com in the npm package @octokit/openapi, without their
// descriptions, and with only the examples of their success answers.
//
//	npm pack @octokit/openapi@23.0.2
//	go run trim.go octokit-openapi-23.0.2.tgz
package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// used are the operations the project calls, "METHOD path".
var used = []string{
	"get /repos/{owner}/{repo}/branches",
	"get /repos/{owner}/{repo}/pulls",
	"get /repos/{owner}/{repo}/pulls/{pull_number}",
	"get /repos/{owner}/{repo}/git/ref/{ref}",
	"post /repos/{owner}/{repo}/statuses/{sha}",
	"get /repos/{owner}/{repo}/installation",
	"post /app/installations/{installation_id}/access_tokens",
}

const member = "package/generated/api.github.com.deref.json"

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go run trim.go octokit-openapi-VERSION.tgz")
		os.Exit(2)
	}
	if err := run(os.Args[1], "testdata/openapi.json"); err != nil {
		fmt.Fprintln(os.Stderr, "trim:", err)
		os.Exit(1)
	}
}

func run(tgz, out string) error {
	f, err := os.Open(tgz)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s not in %s", member, tgz)
		}
		if err != nil {
			return err
		}
		if h.Name == member {
			break
		}
	}
	var spec struct {
		OpenAPI string                               `json:"openapi"`
		Info    map[string]any                       `json:"info"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.NewDecoder(tr).Decode(&spec); err != nil {
		return err
	}
	paths := map[string]map[string]any{}
	for _, u := range used {
		method, path, _ := strings.Cut(u, " ")
		op, ok := spec.Paths[path][method]
		if !ok {
			return fmt.Errorf("%s not in the description", u)
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][method] = trimOperation(op)
	}
	b, err := json.MarshalIndent(map[string]any{
		"openapi": spec.OpenAPI,
		"info":    map[string]any{"title": spec.Info["title"], "version": spec.Info["version"], "x-trimmed-from": "@octokit/openapi " + member},
		"paths":   paths,
	}, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}

// trimOperation keeps what the double checks and answers with.
func trimOperation(op map[string]any) map[string]any {
	out := map[string]any{"operationId": op["operationId"]}
	if ps, ok := op["parameters"].([]any); ok {
		out["parameters"] = strip(ps)
	}
	if rb, ok := op["requestBody"].(map[string]any); ok {
		out["requestBody"] = strip(without(rb, "examples"))
	}
	responses := map[string]any{}
	for code, r := range op["responses"].(map[string]any) {
		if !strings.HasPrefix(code, "2") {
			responses[code] = map[string]any{}
			continue
		}
		resp := map[string]any{}
		if c, ok := r.(map[string]any)["content"].(map[string]any)["application/json"].(map[string]any); ok {
			resp["content"] = map[string]any{"application/json": map[string]any{"examples": c["examples"]}}
		}
		responses[code] = resp
	}
	out["responses"] = responses
	return out
}

func without(m map[string]any, key string) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// strip drops descriptions, titles and examples from a schema or a list of
// parameters.
func strip[T any](v T) T {
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			out := map[string]any{}
			for k, x := range v {
				switch k {
				case "description", "title", "example", "examples", "x-github":
					if _, isString := x.(string); isString || k != "description" {
						continue
					}
				}
				out[k] = walk(x)
			}
			return out
		case []any:
			out := make([]any, len(v))
			for i, x := range v {
				out[i] = walk(x)
			}
			return out
		}
		return v
	}
	return walk(v).(T)
}
