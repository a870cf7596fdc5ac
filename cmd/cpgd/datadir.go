package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// nodeName is the node's name: the one given, else the host's name (as
// registry.New would choose), needed before the node starts to find its
// data dir.
func nodeName(given string) (string, error) {
	if given != "" {
		return given, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("no --name given and no host name: %w", err)
	}
	return host, nil
}

// dataDirOf is the data dir: the one given, else one per node name under
// the user's state directory, so a first start needs no flag and two
// agents of different names on one host never share a file. The state
// directory (not the cache) because registrations must survive a cache
// clean-up: $XDG_STATE_HOME, else ~/.local/state on Unix-like systems, the
// user's configuration directory elsewhere.
func dataDirOf(given, name string) (string, error) {
	if given != "" {
		return given, nil
	}
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" || !filepath.IsAbs(base) {
		var err error
		switch runtime.GOOS {
		case "windows", "darwin", "ios", "plan9":
			base, err = os.UserConfigDir()
		default:
			var home string
			home, err = os.UserHomeDir()
			base = filepath.Join(home, ".local", "state")
		}
		if err != nil {
			return "", fmt.Errorf("no default data dir (%w): give one with --data-dir", err)
		}
	}
	return filepath.Join(base, "cpgd", dirName(name)), nil
}

// dirName turns a node name into one path element that names no other
// directory.
func dirName(name string) string {
	escaped := url.PathEscape(name)
	if strings.Trim(escaped, ".") == "" {
		escaped = strings.ReplaceAll(escaped, ".", "%2E")
	}
	return escaped
}
