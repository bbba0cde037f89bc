package ops

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvPrefix starts the name of every environment variable that sets a flag.
const EnvPrefix = "SLUICE_"

// EnvName returns the environment variable that sets the flag flagName:
// [EnvPrefix] followed by the flag name in upper case with '-' and '.'
// replaced by '_'. "ops-listen" gives "SLUICE_OPS_LISTEN".
func EnvName(flagName string) string {
	r := strings.NewReplacer("-", "_", ".", "_")
	return EnvPrefix + strings.ToUpper(r.Replace(flagName))
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable (see [EnvName]), so the precedence is command
// line, then environment, then default. Call it after fs.Parse.
//
// A variable that is unset or empty leaves the flag alone. A value the flag
// rejects gives an error naming the variable and the flag; ApplyEnv still
// tries every other flag and returns all such errors joined, with the flags
// it could set already set.
func ApplyEnv(fs *flag.FlagSet) error {
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := EnvName(f.Name)
		v := os.Getenv(env)
		if v == "" {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Errorf("%s: invalid value %q for flag -%s: %w", env, v, f.Name, err))
		}
	})
	return errors.Join(errs...)
}

// Usage returns a function for fs.Usage that prints, to fs.Output(),
// "Usage: sluice <name> [flags]", the summary, then every flag with its help,
// its default and its environment variable.
func Usage(fs *flag.FlagSet, name, summary string) func() {
	return func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: sluice %s [flags]\n\n", name)
		if summary != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(summary))
		}
		fmt.Fprintln(w, "Flags:")
		fs.VisitAll(func(f *flag.Flag) {
			typ, help := flag.UnquoteUsage(f)
			fmt.Fprintf(w, "  -%s\n", strings.TrimSpace(f.Name+" "+typ))
			fmt.Fprintf(w, "    \t%s\n", strings.ReplaceAll(help, "\n", "\n    \t"))
			if def := defaultText(f); def != "" {
				fmt.Fprintf(w, "    \tdefault: %s\n", def)
			}
			fmt.Fprintf(w, "    \tenv: %s\n", EnvName(f.Name))
		})
	}
}

// defaultText renders a flag's default for [Usage]: strings quoted, empty
// strings omitted.
func defaultText(f *flag.Flag) string {
	if f.DefValue == "" {
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}
