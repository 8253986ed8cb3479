"""Go text/template constructs and sprig functions: template → expected output, as Go documents them."""

from __future__ import annotations

from typing import Any

import pytest

from corral.catalog.gotemplate import TemplateError, render
from corral.model.errors import InvalidInput

DATA: dict[str, Any] = {
    "Values": {"A": "x", "EMPTY": "", "N": "3", "T": "true"},
    "Stack": {"Name": "web"},
    "M": {"b": 2, "a": 1},
    "L": ["p", "q"],
}

CASES = [
    # text, actions, fields
    ("plain text\n", "plain text\n"),
    ("{{.Values.A}}-{{.Stack.Name}}", "x-web"),
    ("[{{.Values.MISSING}}]", "[]"),
    ("{{.L}} {{.M}}", "[p q] map[a:1 b:2]"),
    ("{{/* a comment */}}x", "x"),
    ("a \n {{- /* c */ -}} \n b", "ab"),
    # trim markers
    ("a  \n\t{{- .Values.A -}}\n  b", "axb"),
    ("a {{- 3}}", "a3"),
    ("{{-3}}", "-3"),
    ("a {{3 -}} b", "a 3b"),
    # literals
    ('{{"a\\tb\\u00e9\\x41\\101"}}', "a\tbéAA"),
    ("{{`raw\\n`}}", "raw\\n"),
    ("{{1.5}} {{1e6}} {{0x1F}} {{010}} {{1_000}} {{'a'}} {{true}} {{-2}}", "1.5 1e+06 31 8 1000 97 true -2"),
    # if / else if / else / with / range
    ("{{if .Values.EMPTY}}y{{else if .Values.A}}a{{else}}n{{end}}", "a"),
    ("{{if 0}}y{{else}}n{{end}}{{if .L}}L{{end}}{{if .Values.MISSING}}m{{end}}", "nL"),
    ("{{with .Stack}}{{.Name}}{{end}}{{with .Values.EMPTY}}no{{else}}else{{end}}", "webelse"),
    ("{{range .L}}<{{.}}>{{end}}", "<p><q>"),
    ("{{range $i, $e := .L}}{{$i}}={{$e}};{{end}}", "0=p;1=q;"),
    ("{{range $k, $v := .M}}{{$k}}{{$v}}{{end}}", "a1b2"),
    ("{{range $e := .L}}{{$e}}{{end}}", "pq"),
    ("{{range list}}x{{else}}none{{end}}", "none"),
    ("{{range until 5}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}", "02"),
    ("{{range $i, $e := atoi .Values.N | until}}{{$i}}{{end}}", "012"),
    # variables and scoping
    ("{{$x := 1}}{{if true}}{{$x = 2}}{{$y := 5}}{{end}}{{$x}}", "2"),
    ("{{$x := .Values.A}}{{with .Stack}}{{$x}}{{.Name}}{{$.Values.A}}{{end}}", "xwebx"),
    # pipelines and parentheses
    ('{{.Values.A | printf "%s-%s" "p"}}', "p-x"),
    ('{{"abc" | upper | printf "%q"}}', '"ABC"'),
    ('{{if eq (printf "%.1s" "/mnt") "/"}}abs{{end}}', "abs"),
    ('{{if (ne .Values.T "true") and .Values.A}}y{{else}}n{{end}}', "n"),
    # define / template / block
    ('{{define "t"}}[{{.}}]{{end}}{{template "t" 5}}{{template "t" "s"}}', "[5][s]"),
    ('{{block "b" .Stack}}{{.Name}}{{end}}', "web"),
    # builtins
    ('{{and 1 0 2}} {{and 1 2}} {{or 0 "" 3}} {{or 0 false}} {{not 0}}', "0 2 3 false true"),
    ('{{len .L}} {{len .M}} {{len "é"}}', "2 2 2"),
    ('{{index .L 1}} {{index .M "b"}} {{index .M "zz"}}', "q 2 "),
    ('{{print 1 2 "a" 3}}|{{println 1 "a"}}|', "1 2a3|1 a\n|"),
    ('{{html "<a href=\'x\'>&\\"</a>"}}', "&lt;a href=&#39;x&#39;&gt;&amp;&#34;&lt;/a&gt;"),
    ('{{js "it\'s <b>"}}', "it\\'s \\u003Cb\\u003E"),
    ('{{urlquery "a b&c"}}', "a+b%26c"),
    (
        '{{eq 1 1}} {{eq "a" "b" "a"}} {{ne 1 2}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}}',
        "true true true true true true false",
    ),
    ('{{slice "hello" 1 3}}', "el"),
    # printf verbs
    (
        '{{printf "%s|%d|%v|%q|%t|%x|%X|%03d|%-4s|%5.2f|%e|%g" "s" 42 .L "q" true 255 "hi" 7 "ab" 3.14159 1500.0 0.5}}',
        's|42|[p q]|"q"|true|ff|6869|007|ab  | 3.14|1.500000e+03|0.5',
    ),
    ('{{printf "%.1s|%+d|%o|%b|%c|%%|%d" "xyz" 5 8 5 65 "str"}}', "x|+5|10|101|A|%|%!d(string=str)"),
    ('{{printf "%d %d" 1}}|{{printf "%d" 1 2}}', "1 %!d(MISSING)|1%!(EXTRA int=2)"),
    # sprig
    ('{{default "d" .Values.EMPTY}} {{default "d" .Values.A}} {{.Values.EMPTY | default "p"}}', "d x p"),
    ("{{empty .Values.EMPTY}} {{empty .L}} {{empty 0}} {{empty 1}}", "true false true false"),
    ('{{coalesce "" 0 "c" "d"}}', "c"),
    ('{{quote "a\\"b" 1}} {{squote "a"}}', '"a\\"b" "1" \'a\''),
    ('{{upper "ab"}} {{lower "AB"}} {{title "hello wide-world"}}', "AB ab Hello Wide-World"),
    (
        '[{{trim "  a b \\n"}}] {{trimAll "$" "$5.00$"}} {{trimPrefix "ab" "abc"}} {{trimSuffix "bc" "abc"}}',
        "[a b] 5.00 c a",
    ),
    ('{{contains "cat" "catch"}} {{hasPrefix "ca" "cat"}} {{hasSuffix "x" "cat"}}', "true true false"),
    ('{{"I Am" | replace " " "-"}}', "I-Am"),
    ('{{split "," "a,b,c"}} {{(split "," "a,b")._1}}', "map[_0:a _1:b _2:c] b"),
    ('{{splitList "," "a,b"}} {{join "-" (splitList "," "a,b")}} {{join "+" (list 1 2)}}', "[a b] a-b 1+2"),
    ('{{list 1 "a"}} {{dict "k" "v" "n" 1}} {{keys (dict "b" 1 "a" 2)}}', "[1 a] map[k:v n:1] [a b]"),
    ('{{hasKey .M "a"}} {{hasKey .M "z"}}', "true false"),
    (
        "{{until 3}} {{until -2}} {{untilStep 0 10 4}} {{untilStep 5 0 -2}} {{untilStep 0 5 -1}}",
        "[0 1 2] [0 -1] [0 4 8] [5 3 1] []",
    ),
    (
        '{{atoi "42"}} {{atoi "x"}} {{atoi " 1"}} {{int "0x10"}} {{int 3.9}} {{int64 "7"}} {{float64 "1.5"}}',
        "42 0 0 16 3 7 1.5",
    ),
    (
        "{{toString 5}} {{add 1 2 3}} {{sub 5 7}} {{mul 2 3 4}} {{div 7 2}} {{div -7 2}} {{mod 7 3}} {{mod -7 3}}",
        "5 6 -2 24 3 -3 1 -1",
    ),
    ('{{max 1 5 3}} {{min 4 2 9}} {{add1 "4"}}', "5 2 5"),
    ('{{repeat 3 "ab"}} {{substr 1 3 "hello"}} {{substr -1 2 "hello"}} {{substr 2 99 "hello"}}', "ababab el he llo"),
    ('{{nospace " a b\\t c "}} {{b64enc "hi"}} {{b64dec "aGk="}}', "abc aGk= hi"),
    ('{{sha256sum "abc"}}', "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ('{{regexMatch "^[a-z]+$" "abc"}} {{regexMatch "^[a-z]+$" "a1"}}', "true false"),
    ('{{regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W"}} {{regexReplaceAll "(?P<n>b)" "abc" "[$n]"}}', "-W-xxW- a[b]c"),
    ('{{ternary "y" "n" true}} {{false | ternary "y" "n"}}', "y n"),
]


@pytest.mark.parametrize(("template", "expected"), CASES, ids=[c[0][:40] for c in CASES])
def test_renders_like_go(template: str, expected: str) -> None:
    assert render(template, DATA, filename="t.tpl") == expected


ERRORS = [
    ("a\n  {{ .X ", "2:3: unclosed action"),
    ("{{/* x ", "1:1: unclosed comment"),
    ("x{{end}}", "1:4: unexpected {{end}}"),
    ("x{{else}}", "1:4: unexpected {{else}}"),
    ("\n{{if .A}}x", "2:3: {{if}} has no matching {{end}}"),
    ("{{range .L}}", "1:3: {{range}} has no matching {{end}}"),
    ("{{if}}{{end}}", "1:5: missing value for if"),
    ("{{ nope 1 }}", '1:4: function "nope" not defined'),
    ("{{ 1.2.3 }}", "1:7: unexpected '.3' in operand"),
    ("{{ 1x }}", "1:4: bad number syntax"),
    ("{{ $x }}", '1:4: undefined variable "$x"'),
    ('{{ "abc }}', "1:4: unterminated quoted string"),
    ("{{ (1 }}", "1:7: unclosed left paren"),
    ("{{ 1) }}", "1:5: unexpected right paren"),
    ("{{break}}", "1:3: {{break}} outside {{range}}"),
    ("{{ 1 | 2 }}", "1:8: non executable command in pipeline stage 2"),
    ("{{ .A | .B }}", "1:9: B is not a method but has arguments"),
    ("{{ nil }}", "1:4: nil is not a command"),
    ('{{ "a" 1 }}', '1:4: can\'t give argument to non-function "a"'),
    ("{{ div 1 0 }}", "1:4: error calling div: runtime error: integer divide by zero"),
    ("{{ mod 1 0 }}", "1:4: error calling mod: runtime error: integer divide by zero"),
    ("{{ index .L 5 }}", "1:4: error calling index: index out of range: 5"),
    ("\n\n   {{ upper 5 }}", "3:13: expected string; found 5"),
    ("{{ upper .N }}", "1:10: wrong type for value; expected string; got int"),
    ("{{ upper }}", "1:4: wrong number of args for upper: want 1 got 0"),
    ("{{ upper 1 2 }}", "1:4: wrong number of args for upper: want 1 got 2"),
    ("{{ eq 1 }}", "1:4: error calling eq: missing argument for comparison"),
    ('{{ eq 1 "1" }}', "1:4: error calling eq: incompatible types for comparison"),
    ("{{ lt true false }}", "1:4: error calling lt: invalid type for comparison"),
    ("{{ .L.x }}", "1:4: can't evaluate field x in type []interface {}"),
    ("{{ range 5 }}{{end}}", "1:4: range can't iterate over 5"),
    ('{{ template "nope" }}', '1:4: no such template "nope"'),
    ('{{ regexReplaceAll "(" "a" "b" }}', "1:4: error calling regexReplaceAll: regexp: Compile"),
]


@pytest.mark.parametrize(("template", "message"), ERRORS, ids=[e[0][:30] for e in ERRORS])
def test_errors_name_file_line_and_column(template: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render(template, {"L": ["a"], "N": 5}, filename="docker-compose.yml.tpl")
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.field == "docker-compose.yml.tpl"
    assert error.message.startswith(f"docker-compose.yml.tpl:{message}"), error.message
