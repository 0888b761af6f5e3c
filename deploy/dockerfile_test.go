package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stage is one FROM of a Dockerfile and the instructions under it.
type stage struct {
	from         string
	instructions [][2]string // instruction, its arguments
}

// parseDockerfile reads a Dockerfile's stages, joining lines continued with a backslash.
func parseDockerfile(text string) []stage {
	var stages []stage
	var cont string
	for line := range strings.Lines(text) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		line, cont = cont+line, ""
		instr, args, _ := strings.Cut(line, " ")
		instr = strings.ToUpper(instr)
		if instr == "FROM" {
			stages = append(stages, stage{from: strings.TrimSpace(args)})
			continue
		}
		if len(stages) > 0 {
			stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, [2]string{instr, strings.TrimSpace(args)})
		}
	}
	return stages
}

// checkDockerfile checks the image's recipe: built in a stage of its own without cgo, and run
// from a final stage without a shell (distroless's static image or scratch), as a numeric
// non-root user, with the binary as its entry point, from sources that exist under root.
func checkDockerfile(text, root string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	stages := parseDockerfile(text)
	if len(stages) < 2 {
		return []error{fmt.Errorf("%d stages, want a build stage and a final one", len(stages))}
	}
	build, final := stages[0], stages[len(stages)-1]
	static := false
	for _, in := range build.instructions {
		if (in[0] == "ENV" || in[0] == "RUN" || in[0] == "ARG") && strings.Contains(in[1], "CGO_ENABLED=0") {
			static = true
		}
		if in[0] == "COPY" && !strings.HasPrefix(in[1], "--from") {
			fields := strings.Fields(in[1])
			for _, src := range fields[:len(fields)-1] {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					bad("COPY %s: %s is not in the repository", in[1], src)
				}
			}
		}
	}
	if !static {
		bad("the build stage does not set CGO_ENABLED=0: the binary would need a C library the final image lacks")
	}
	base := strings.Fields(final.from)[0]
	if base != "scratch" && !strings.HasPrefix(base, "gcr.io/distroless/static") {
		bad("the final stage is FROM %s, want scratch or distroless's static image: no shell", base)
	}
	user := ""
	for _, in := range final.instructions {
		switch in[0] {
		case "RUN":
			bad("the final stage runs %q: it has no shell to run it with", in[1])
		case "USER":
			user = strings.Split(in[1], ":")[0]
		case "ENTRYPOINT":
			if !strings.HasPrefix(in[1], "[") {
				bad("ENTRYPOINT %s is in shell form; the image has no shell", in[1])
			}
		case "COPY":
			if !strings.HasPrefix(in[1], "--from=") {
				bad("the final stage copies %q from the context, not from the build stage", in[1])
			}
		}
	}
	if user == "" || user == "0" || user == "root" || strings.Trim(user, "0123456789") != "" {
		bad("the final stage runs as user %q, want a numeric non-root one (Kubernetes checks runAsNonRoot by number)", user)
	}
	if !slices.ContainsFunc(final.instructions, func(in [2]string) bool { return in[0] == "ENTRYPOINT" }) {
		bad("the final stage has no ENTRYPOINT")
	}
	return errs
}

func TestTheDockerfileBuildsAStaticBinaryIntoAShellFreeNonRootImage(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if errs := checkDockerfile(string(b), repoRoot(t)); len(errs) > 0 {
		t.Errorf("deploy/Dockerfile:\n%s", joinErrors(errs))
	}
}

func TestABrokenDockerfileFailsItsCheck(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	tests := []struct{ name, old, new, want string }{
		{"cgo", "CGO_ENABLED=0 ", "CGO_ENABLED=1 ", "CGO_ENABLED=0"},
		{"a base with a shell", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:bookworm-slim", "want scratch or distroless"},
		{"root", "USER 65532:65532", "USER root", `user "root"`},
		{"a named user", "USER 65532:65532", "USER nonroot", `user "nonroot"`},
		{"a shell command", "USER 65532:65532", "RUN chmod 0755 /usr/local/bin/whistle\nUSER 65532:65532", "it has no shell"},
		{"a shell-form entry point", `ENTRYPOINT ["/usr/local/bin/whistle"]`, "ENTRYPOINT /usr/local/bin/whistle", "shell form"},
		{"a missing source", "COPY services/ services/", "COPY service/ services/", "service/ is not in the repository"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(text, tc.old) != 1 {
				t.Fatalf("the Dockerfile holds %q %d times, want once", tc.old, strings.Count(text, tc.old))
			}
			got := joinErrors(checkDockerfile(strings.Replace(text, tc.old, tc.new, 1), repoRoot(t)))
			if !strings.Contains(got, tc.want) {
				t.Errorf("check of the broken Dockerfile found:\n%s\nwant a problem naming %q", got, tc.want)
			}
		})
	}
}
