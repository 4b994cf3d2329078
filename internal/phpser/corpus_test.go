package phpser_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

var filepathGlob = filepath.Glob

// readCorpusFile reads a "go test fuzz v1" file holding one []byte.
func readCorpusFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := bytes.SplitN(b, []byte("\n"), 3)
	if len(lines) < 2 || string(lines[0]) != "go test fuzz v1" {
		return nil, fmt.Errorf("not a fuzz corpus file")
	}
	arg := string(bytes.TrimSpace(lines[1]))
	if len(arg) < 8 || arg[:7] != "[]byte(" || arg[len(arg)-1] != ')' {
		return nil, fmt.Errorf("want []byte(...), got %.40s", arg)
	}
	s, err := strconv.Unquote(arg[7 : len(arg)-1])
	return []byte(s), err
}
