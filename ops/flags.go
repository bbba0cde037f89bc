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

// ParseInterspersed parses args into fs as fs.Parse does, except that flags
// may come before, between and after the positional arguments: Go's flag
// package stops at the first argument that is not a flag, so
// "load FILE --replicas 3" would leave "--replicas" and "3" as positional
// arguments. A "--" ends the flags: everything after it is positional, even
// if it starts with '-'. A lone "-" is positional.
//
// On success fs.Args holds the positional arguments in their order. The
// error is fs.Parse's, [flag.ErrHelp] included; fs.Args is then unspecified.
func ParseInterspersed(fs *flag.FlagSet, args []string) error {
	var operands []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			operands = append(operands, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		operands = append(operands, rest[0])
		args = rest[1:]
	}
	// Parse once more so that fs.Args returns the operands: "--" stops
	// parsing at once and leaves the rest as they are; flags already set
	// stay set.
	return fs.Parse(append([]string{"--"}, operands...))
}

// Usage returns a function for fs.Usage that prints, to fs.Output(),
// "Usage: sluice <name> [flags]", the summary, then every flag with its help,
// its default and its environment variable ("[flags]" and the list only when
// fs has flags). The name may go on with the command's positional arguments
// ("sub FILTER"). The default is left out
// where it is the empty string, and where the help text states the default
// itself ("(default 16384)"), as flags whose zero value stands for a default
// computed elsewhere do: their zero value is not the default that applies.
func Usage(fs *flag.FlagSet, name, summary string) func() {
	return func() {
		w := fs.Output()
		hasFlags := false
		fs.VisitAll(func(*flag.Flag) { hasFlags = true })
		if hasFlags {
			fmt.Fprintf(w, "Usage: sluice %s [flags]\n\n", name)
		} else {
			fmt.Fprintf(w, "Usage: sluice %s\n\n", name)
		}
		if summary != "" {
			fmt.Fprintf(w, "%s\n\n", strings.TrimSpace(summary))
		}
		if !hasFlags {
			return
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

// defaultText renders a flag's default for [Usage]: strings quoted; empty
// when the default is the empty string or the help text states it.
func defaultText(f *flag.Flag) string {
	if f.DefValue == "" || statesDefault(f.Usage) {
		return ""
	}
	if g, ok := f.Value.(flag.Getter); ok {
		if _, isString := g.Get().(string); isString {
			return fmt.Sprintf("%q", f.DefValue)
		}
	}
	return f.DefValue
}

// statesDefault reports whether a flag's help text states its default,
// "(default 8)" or "(default: the rate)".
func statesDefault(help string) bool {
	return strings.Contains(help, "(default ") || strings.Contains(help, "(default:")
}
