// Package ssmparams puts the secrets of the function's configuration into
// its environment at init, from AWS Systems Manager parameters: a variable
// X_SSM_PARAMETER names the SecureString parameter that holds the value of
// X (terraform/modules/function sets them). Secrets so never sit in the
// Lambda's environment, which anyone who may read the function's
// configuration sees, and which holds 4 KB in all.
package ssmparams

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"runboat.dev/shared/config"
)

// Suffix marks the variables that name a parameter.
const Suffix = "_SSM_PARAMETER"

// batch is the most names one GetParameters call takes.
const batch = 10

// Getter reads parameters: the SSM client.
type Getter interface {
	GetParameters(ctx context.Context, in *ssm.GetParametersInput, opts ...func(*ssm.Options)) (*ssm.GetParametersOutput, error)
}

// Wanted returns the variables of environ that name a parameter, by the
// variable they give (X for X_SSM_PARAMETER).
func Wanted(environ map[string]string) map[string]string {
	want := map[string]string{}
	for k, v := range environ {
		if name, ok := strings.CutSuffix(k, Suffix); ok && name != "" {
			want[name] = v
		}
	}
	return want
}

// Resolve returns environ with each variable of Wanted set to the value of
// its parameter, decrypted, and the X_SSM_PARAMETER variables left out. A
// variable set both ways, an empty parameter name, or a parameter that
// cannot be read is an error naming them (never their values); environ is
// then not changed.
func Resolve(ctx context.Context, environ map[string]string, g Getter) (map[string]string, error) {
	want := Wanted(environ)
	if len(want) == 0 {
		return environ, nil
	}
	var errs []error
	byParam := map[string][]string{} // parameter name: the variables it gives
	for _, v := range slices.Sorted(maps.Keys(want)) {
		p := want[v]
		switch {
		case p == "":
			errs = append(errs, fmt.Errorf("%s%s is empty: want the name of an SSM parameter", v, Suffix))
		case environ[v] != "":
			errs = append(errs, fmt.Errorf("%s is set both in the environment and by %s%s: keep one", v, v, Suffix))
		default:
			byParam[p] = append(byParam[p], v)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(byParam))
	values := map[string]string{}
	for chunk := range slices.Chunk(names, batch) {
		out, err := g.GetParameters(ctx, &ssm.GetParametersInput{Names: chunk, WithDecryption: aws.Bool(true)})
		if err != nil {
			return nil, fmt.Errorf("failed to read the SSM parameters %s: %w", strings.Join(chunk, ", "), err)
		}
		if len(out.InvalidParameters) > 0 {
			return nil, fmt.Errorf("no such SSM parameters (or not readable by the function): %s", strings.Join(out.InvalidParameters, ", "))
		}
		for _, p := range out.Parameters {
			values[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	res := map[string]string{}
	for k, v := range environ {
		if name, ok := strings.CutSuffix(k, Suffix); !ok || name == "" {
			res[k] = v
		}
	}
	for _, p := range names {
		val, ok := values[p]
		if !ok {
			return nil, fmt.Errorf("SSM did not give the parameter %s", p)
		}
		for _, v := range byParam[p] {
			res[v] = val
		}
	}
	return res, nil
}

// NewClient returns an SSM client for the function's region, with the
// credentials Lambda gives its process (AWS_REGION, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), at the region's endpoint or
// AWS_ENDPOINT_URL_SSM's, as the AWS SDKs and CLI.
func NewClient() (*ssm.Client, error) {
	region := os.Getenv("AWS_REGION")
	key, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if region == "" || key == "" || secret == "" {
		return nil, errors.New("SSM parameters need AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (Lambda sets them)")
	}
	opts := ssm.Options{
		Region:      region,
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(key, secret, os.Getenv("AWS_SESSION_TOKEN"))),
	}
	if endpoint := os.Getenv("AWS_ENDPOINT_URL_SSM"); endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
	}
	return ssm.New(opts), nil
}

// Load puts the parameters named in the process environment into it (X
// set, X_SSM_PARAMETER unset), reading them with NewClient's client; it
// does nothing when no variable names a parameter. It is for a process's
// start: the environment is the process's.
func Load(ctx context.Context) error {
	environ := config.Environ()
	want := Wanted(environ)
	if len(want) == 0 {
		return nil
	}
	c, err := NewClient()
	if err != nil {
		return err
	}
	res, err := Resolve(ctx, environ, c)
	if err != nil {
		return err
	}
	for v := range want {
		if err := os.Setenv(v, res[v]); err != nil {
			return fmt.Errorf("failed to set %s: %w", v, err)
		}
		if err := os.Unsetenv(v + Suffix); err != nil {
			return fmt.Errorf("failed to unset %s%s: %w", v, Suffix, err)
		}
	}
	return nil
}
