package rowgear_test

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// mdPage is a markdown file: its lines outside code fences, its ## and ###
// headings, and its fenced code blocks.
type mdPage struct {
	path   string
	prose  []string // lines outside fences, with their line numbers in lines
	lineNo []int
	h2     []string
	slugs  map[string]bool
	blocks []mdBlock
}

type mdBlock struct {
	lang, body string
	line       int
}

func readPage(t *testing.T, path string) *mdPage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := &mdPage{path: path, slugs: map[string]bool{}}
	seen := map[string]int{}
	var fence *mdBlock
	var body strings.Builder
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "```") {
			if fence == nil {
				fence = &mdBlock{lang: strings.TrimPrefix(l, "```"), line: i + 1}
				body.Reset()
			} else {
				fence.body = body.String()
				p.blocks = append(p.blocks, *fence)
				fence = nil
			}
			continue
		}
		if fence != nil {
			body.WriteString(l + "\n")
			continue
		}
		p.prose = append(p.prose, l)
		p.lineNo = append(p.lineNo, i+1)
		if h, ok := strings.CutPrefix(l, "## "); ok {
			p.h2 = append(p.h2, h)
		}
		if strings.HasPrefix(l, "#") {
			h := strings.TrimLeft(l, "#")
			if strings.HasPrefix(h, " ") {
				s := slug(h)
				if n := seen[s]; n > 0 {
					seen[s]++
					s = fmt.Sprintf("%s-%d", s, n)
				} else {
					seen[s] = 1
				}
				p.slugs[s] = true
			}
		}
	}
	if fence != nil {
		t.Errorf("%s:%d: code fence never closed", path, fence.line)
	}
	return p
}

// slug is the anchor GitHub gives a heading: lower case, punctuation
// dropped, spaces as hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func docFiles(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) == 0 {
		t.Fatal("no docs/*.md")
	}
	return append([]string{"README.md", "CONTRIBUTING.md", "CHANGELOG.md"}, pages...)
}

var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestDocsLinks checks every relative link of the README and the docs pages:
// the file exists, and so does the heading its #anchor names.
func TestDocsLinks(t *testing.T) {
	pages := map[string]*mdPage{}
	get := func(path string) *mdPage {
		if pages[path] == nil {
			pages[path] = readPage(t, path)
		}
		return pages[path]
	}
	for _, file := range docFiles(t) {
		p := get(file)
		for i, l := range p.prose {
			for _, m := range mdLink.FindAllStringSubmatch(l, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				where := fmt.Sprintf("%s:%d: link %s", file, p.lineNo[i], target)
				path, anchor, _ := strings.Cut(target, "#")
				if path == "" {
					path = file
				} else {
					path = filepath.ToSlash(filepath.Join(filepath.Dir(file), path))
				}
				if _, err := os.Stat(path); err != nil {
					t.Errorf("%s: %v", where, err)
					continue
				}
				if anchor != "" && !get(path).slugs[anchor] {
					t.Errorf("%s: %s has no heading with anchor #%s", where, path, anchor)
				}
			}
		}
	}
}

// TestDocsPages checks that each docs page starts with its title, one intro
// paragraph and a table of contents of its ## sections, in order.
func TestDocsPages(t *testing.T) {
	pages, _ := filepath.Glob("docs/*.md")
	toc := regexp.MustCompile(`^- \[(.+)\]\(#([^)]+)\)$`)
	for _, file := range pages {
		p := readPage(t, file)
		if len(p.prose) == 0 || !strings.HasPrefix(p.prose[0], "# ") {
			t.Errorf("%s: does not start with a # title", file)
			continue
		}
		i := 1
		for i < len(p.prose) && p.prose[i] == "" {
			i++
		}
		if i == len(p.prose) || strings.HasPrefix(p.prose[i], "#") || strings.HasPrefix(p.prose[i], "- ") {
			t.Errorf("%s: no intro paragraph after the title", file)
			continue
		}
		for i < len(p.prose) && p.prose[i] != "" {
			i++
		}
		for i < len(p.prose) && p.prose[i] == "" {
			i++
		}
		var listed []string
		for ; i < len(p.prose) && p.prose[i] != ""; i++ {
			m := toc.FindStringSubmatch(p.prose[i])
			if m == nil {
				t.Errorf("%s:%d: not a table-of-contents line: %q", file, p.lineNo[i], p.prose[i])
				break
			}
			listed = append(listed, m[1])
			if m[2] != slug(m[1]) {
				t.Errorf("%s:%d: %q links #%s, its heading's anchor is #%s", file, p.lineNo[i], m[1], m[2], slug(m[1]))
			}
		}
		if strings.Join(listed, "\n") != strings.Join(p.h2, "\n") {
			t.Errorf("%s: the table of contents lists\n%q\nthe ## sections are\n%q", file, listed, p.h2)
		}
	}
}

// TestREADMEFrontPage keeps the README a front page: small, with the set-up
// commands on its first screen.
func TestREADMEFrontPage(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 12*1024 {
		t.Errorf("README.md is %d bytes, over 12 KB: move detail to docs/", len(data))
	}
	first := strings.Join(strings.SplitN(string(data), "\n", 41)[:40], "\n")
	for _, want := range []string{"make demo", "make test"} {
		if !strings.Contains(first, want) {
			t.Errorf("README.md: %q is not on the first 40 lines", want)
		}
	}
}

// TestDocsGoFormatted checks that every Go file printed in the docs (a go
// block starting with its package clause) is gofmt-formatted.
func TestDocsGoFormatted(t *testing.T) {
	for _, file := range docFiles(t) {
		for _, b := range readPage(t, file).blocks {
			if b.lang != "go" || !strings.HasPrefix(b.body, "package ") {
				continue
			}
			out, err := format.Source([]byte(b.body))
			if err != nil {
				t.Errorf("%s:%d: Go block does not parse: %v", file, b.line, err)
				continue
			}
			if !bytes.Equal(out, []byte(b.body)) {
				t.Errorf("%s:%d: Go block is not gofmt-formatted", file, b.line)
			}
		}
	}
}
