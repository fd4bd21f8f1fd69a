package render

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// imageRef is an image reference split into the parts kustomize's images
// transformer takes.
type imageRef struct {
	Name   string // [registry[:port]/]path
	Tag    string // empty when absent
	Digest string // algorithm:hex, empty when absent
}

// The grammar of image references, after the OCI distribution reference
// grammar: a registry host (with optional port) is told from a first path
// component by the regexp engine trying both.
const (
	domainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainPart      = domainComponent + `(?:\.` + domainComponent + `)*(?::[0-9]+)?`
	pathComponent   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
)

var (
	imageNameRE   = regexp.MustCompile(`^(?:` + domainPart + `/)?` + pathComponent + `(?:/` + pathComponent + `)*$`)
	imageTagRE    = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$`)
	imageDigestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// maxImageNameLen is the length limit of an image name (without tag or
// digest), as in the distribution reference grammar.
const maxImageNameLen = 255

// parseImage splits an image reference, [registry[:port]/]path[:tag][@digest],
// into its name, tag and digest, and checks each part.
func parseImage(ref string) (imageRef, error) {
	if ref == "" {
		return imageRef{}, errors.New("empty image reference")
	}
	rest, digest, hasDigest := strings.Cut(ref, "@")
	var img imageRef
	img.Name = rest
	// A tag follows the last colon, unless that colon is in the registry
	// part (host:port), which the last slash closes.
	if i := strings.LastIndexByte(rest, ':'); i > strings.LastIndexByte(rest, '/') {
		img.Name, img.Tag = rest[:i], rest[i+1:]
		if !imageTagRE.MatchString(img.Tag) {
			return imageRef{}, fmt.Errorf("invalid tag %q in image reference %q", img.Tag, ref)
		}
	}
	if hasDigest {
		if !imageDigestRE.MatchString(digest) {
			return imageRef{}, fmt.Errorf("invalid digest %q in image reference %q", digest, ref)
		}
		img.Digest = digest
	}
	if len(img.Name) > maxImageNameLen || !imageNameRE.MatchString(img.Name) {
		return imageRef{}, fmt.Errorf("invalid image name %q in image reference %q", img.Name, ref)
	}
	return img, nil
}
