// Command gen computes golden outputs for the template tests with Go's real text/template,
// text/tabwriter and docker's template functions (re-implemented here as docker/cli has them).
//
//	cd src/cli/format/testdata && go run gen.go < golden.json > golden.new && mv golden.new golden.json
//
// golden.json holds {fixtures: {name: data}, cases: [...]}; gen fills in each
// case's output or error (add a case without them, then run gen). A case's "deviation"
// ({output|error, reason}) records where berth deliberately differs from Go 1.19.
package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
)

type tcase struct {
	Name       string            `json:"name"`
	Template   *string           `json:"template,omitempty"`
	Data       json.RawMessage   `json:"data,omitempty"`
	Fixture    string            `json:"fixture,omitempty"`
	MissingKey string            `json:"missingKey,omitempty"`
	Tab        *string           `json:"tab,omitempty"`
	Table      *string           `json:"table,omitempty"`
	Rows       json.RawMessage   `json:"rows,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Deviation  json.RawMessage   `json:"deviation,omitempty"`
	Output     *string           `json:"output,omitempty"`
	Error      *string           `json:"error,omitempty"`
}

var basicFunctions = template.FuncMap{
	"json": func(v any) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split": strings.Split,
	"join":  strings.Join,
	"title": strings.Title,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"pad": func(s string, p, q int) string {
		if s == "" {
			return s
		}
		return strings.Repeat(" ", p) + s + strings.Repeat(" ", q)
	},
	"truncate": func(s string, n int) string {
		if len(s) < n {
			return s
		}
		return s[:n]
	},
}

var headerFunctions = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

// conv turns integral float64s into ints (docker's typed structs hold ints) and string-only
// slices into []string (docker's typed structs hold []string).
func conv(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return int(x)
		}
		return x
	case []any:
		allStrings := len(x) > 0
		for i := range x {
			x[i] = conv(x[i])
			if _, ok := x[i].(string); !ok {
				allStrings = false
			}
		}
		if allStrings {
			s := make([]string, len(x))
			for i := range x {
				s[i] = x[i].(string)
			}
			return s
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = conv(x[k])
		}
		return x
	}
	return v
}

func decode(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		panic(err)
	}
	return conv(v)
}

func main() {
	var file struct {
		Fixtures map[string]json.RawMessage `json:"fixtures"`
		Cases    []tcase                    `json:"cases"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&file); err != nil {
		panic(err)
	}
	cases := file.Cases
	for i := range cases {
		c := &cases[i]
		data := c.Data
		if c.Fixture != "" {
			data = file.Fixtures[c.Fixture]
		}
		c.Output, c.Error = nil, nil
		var out string
		var err error
		switch {
		case c.Template != nil:
			var t *template.Template
			t, err = template.New("").Funcs(basicFunctions).Parse(*c.Template)
			if err == nil {
				if c.MissingKey != "" {
					t = t.Option("missingkey=" + c.MissingKey)
				}
				var b bytes.Buffer
				err = t.Execute(&b, decode(data))
				out = b.String()
			}
		case c.Tab != nil:
			var b bytes.Buffer
			w := tabwriter.NewWriter(&b, 10, 1, 3, ' ', 0)
			w.Write([]byte(*c.Tab))
			w.Flush()
			out = b.String()
		case c.Table != nil:
			format := strings.TrimPrefix(*c.Table, "table")
			format = strings.Trim(format, " ")
			format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
			var t *template.Template
			t, err = template.New("").Funcs(basicFunctions).Parse(format)
			if err == nil {
				var body bytes.Buffer
				rows, _ := decode(c.Rows).([]any)
				for _, r := range rows {
					if err = t.Execute(&body, r); err != nil {
						break
					}
					body.WriteString("\n")
				}
				if err == nil && !strings.HasPrefix(*c.Table, "table") {
					out = body.String()
				} else if err == nil {
					var b bytes.Buffer
					w := tabwriter.NewWriter(&b, 10, 1, 3, ' ', 0)
					var h bytes.Buffer
					t.Funcs(headerFunctions).Execute(&h, c.Headers)
					h.WriteTo(w)
					w.Write([]byte("\n"))
					body.WriteTo(w)
					w.Flush()
					out = b.String()
				}
			}
		}
		if err != nil {
			msg := err.Error()
			c.Error = &msg
		} else {
			c.Output = &out
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	file.Cases = cases
	enc.Encode(file)
}
