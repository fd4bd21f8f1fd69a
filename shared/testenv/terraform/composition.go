package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// What checkComposition reads of a module folder. The files are laid out
// by `tofu fmt` (TestFormat checks it): a top-level block starts at the
// beginning of a line and ends with a "}" alone there, and its own
// arguments are indented by two spaces.
var (
	blockStart = regexp.MustCompile(`^(variable|output|module|locals)(?: "([^"]+)")? \{$`)
	argument   = regexp.MustCompile(`^  ([a-z_][a-z0-9_]*)\s+=`)
	varRef     = regexp.MustCompile(`\bvar\.([a-z_][a-z0-9_]*)`)
	localRef   = regexp.MustCompile(`\blocal\.([a-z_][a-z0-9_]*)`)
	moduleRef  = regexp.MustCompile(`\bmodule\.([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)`)
)

// moduleInfo is what a module folder declares and uses.
type moduleInfo struct {
	variables map[string]bool // name: has a default
	outputs   map[string]bool
	locals    map[string]bool
	calls     map[string]moduleCall
	varRefs   map[string]bool
	localRefs map[string]bool
	outRefs   map[[2]string]bool // module name, output
}

type moduleCall struct {
	source string
	args   []string
}

// readModule reads the .tf files of dir.
func readModule(dir string) (*moduleInfo, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no .tf file", dir)
	}
	m := &moduleInfo{
		variables: map[string]bool{}, outputs: map[string]bool{}, locals: map[string]bool{},
		calls: map[string]moduleCall{}, varRefs: map[string]bool{}, localRefs: map[string]bool{},
		outRefs: map[[2]string]bool{},
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var kind, name string
		var call moduleCall
		for _, line := range strings.Split(string(src), "\n") {
			code := line
			if i := strings.Index(code, "#"); i >= 0 && !strings.Contains(code[:i], `"`) {
				code = code[:i]
			}
			for _, r := range varRef.FindAllStringSubmatch(code, -1) {
				m.varRefs[r[1]] = true
			}
			for _, r := range localRef.FindAllStringSubmatch(code, -1) {
				m.localRefs[r[1]] = true
			}
			for _, r := range moduleRef.FindAllStringSubmatch(code, -1) {
				m.outRefs[[2]string{r[1], r[2]}] = true
			}
			if s := blockStart.FindStringSubmatch(line); s != nil {
				kind, name, call = s[1], s[2], moduleCall{}
				switch kind {
				case "variable":
					m.variables[name] = false
				case "output":
					m.outputs[name] = true
				}
				continue
			}
			if line == "}" {
				if kind == "module" {
					m.calls[name] = call
				}
				kind = ""
				continue
			}
			a := argument.FindStringSubmatch(line)
			if a == nil {
				continue
			}
			switch kind {
			case "variable":
				if a[1] == "default" {
					m.variables[name] = true
				}
			case "locals":
				m.locals[a[1]] = true
			case "module":
				if a[1] == "source" {
					call.source = strings.Trim(strings.TrimSpace(line[strings.Index(line, "=")+1:]), `"`)
				} else {
					call.args = append(call.args, a[1])
				}
			}
		}
	}
	return m, nil
}

// checkComposition checks what `validate` would check of the references
// between a module folder and the local modules it calls, without any
// provider: every var. and local. it uses is declared, and every module
// call passes only inputs the module declares, all those it requires, and
// uses only outputs it has. It is what make test checks of the folders
// whose provider the Go module proxy does not serve.
func checkComposition(dir string) error {
	m, err := readModule(dir)
	if err != nil {
		return err
	}
	var problems []string
	for v := range m.varRefs {
		if _, ok := m.variables[v]; !ok {
			problems = append(problems, fmt.Sprintf("var.%s is not declared", v))
		}
	}
	for l := range m.localRefs {
		if !m.locals[l] {
			problems = append(problems, fmt.Sprintf("local.%s is not defined", l))
		}
	}
	for ref := range m.outRefs {
		if _, ok := m.calls[ref[0]]; !ok {
			problems = append(problems, fmt.Sprintf("module.%s is not called", ref[0]))
		}
	}
	for name, call := range m.calls {
		if !strings.HasPrefix(call.source, ".") {
			continue // from a registry: not checked here
		}
		callee, err := readModule(filepath.Join(dir, call.source))
		if err != nil {
			return fmt.Errorf("module %s: %w", name, err)
		}
		for _, a := range call.args {
			if _, ok := callee.variables[a]; !ok && !slices.Contains([]string{"count", "for_each", "depends_on", "providers"}, a) {
				problems = append(problems, fmt.Sprintf("module %s: %s has no input %q", name, call.source, a))
			}
		}
		for v, hasDefault := range callee.variables {
			if !hasDefault && !slices.Contains(call.args, v) {
				problems = append(problems, fmt.Sprintf("module %s: the required input %q of %s is not given", name, v, call.source))
			}
		}
		for ref := range m.outRefs {
			if ref[0] == name && !callee.outputs[ref[1]] {
				problems = append(problems, fmt.Sprintf("module.%s.%s: %s has no such output", name, ref[1], call.source))
			}
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%s:\n  %s", dir, strings.Join(problems, "\n  "))
	}
	return nil
}
