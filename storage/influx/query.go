package influx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// EnsureDatabase creates database db on the InfluxDB 1.x at baseURL (POST
// /query, CREATE DATABASE, which is a no-op when db exists). user and pass are
// sent as basic auth when user is non-empty.
func EnsureDatabase(ctx context.Context, baseURL, user, pass, db string) error {
	if db == "" {
		return fmt.Errorf("influx: ensure database: empty name")
	}
	_, err := influxQL(ctx, http.MethodPost, baseURL, user, pass, "", "CREATE DATABASE "+quoteIdent(db))
	if err != nil {
		return fmt.Errorf("influx: create database %q: %w", db, err)
	}
	return nil
}

// CountPoints returns how many points of measurement in database db (default
// retention policy) have field set, over all time (InfluxQL
// SELECT count("field") FROM "measurement"). It returns 0 when the
// measurement does not exist. Credentials, if any, go in baseURL's userinfo
// (http://user:pass@host:8086). Meant for tests and the no-loss check.
func CountPoints(ctx context.Context, baseURL, db, measurement, field string) (int64, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return 0, fmt.Errorf("influx: count points: parse URL: %w", err)
	}
	var user, pass string
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	q := "SELECT count(" + quoteIdent(field) + ") FROM " + quoteIdent(measurement)
	res, err := influxQL(ctx, http.MethodGet, u.String(), user, pass, db, q)
	if err != nil {
		return 0, fmt.Errorf("influx: count %s.%s in %q: %w", measurement, field, db, err)
	}
	if len(res.Series) == 0 {
		return 0, nil
	}
	s := res.Series[0]
	col := -1
	for i, c := range s.Columns {
		if c == "count" {
			col = i
		}
	}
	if col < 0 || len(s.Values) == 0 || len(s.Values[0]) <= col {
		return 0, fmt.Errorf("influx: count %s.%s in %q: unexpected result %+v", measurement, field, db, s)
	}
	num, ok := s.Values[0][col].(json.Number)
	if !ok {
		return 0, fmt.Errorf("influx: count %s.%s in %q: count is %T, not a number", measurement, field, db, s.Values[0][col])
	}
	n, err := num.Int64()
	if err != nil {
		return 0, fmt.Errorf("influx: count %s.%s in %q: %w", measurement, field, db, err)
	}
	return n, nil
}

// queryResult is one statement's result in a 1.x /query JSON response.
type queryResult struct {
	Error  string `json:"error"`
	Series []struct {
		Name    string            `json:"name"`
		Tags    map[string]string `json:"tags"`
		Columns []string          `json:"columns"`
		Values  [][]any           `json:"values"`
	} `json:"series"`
}

// influxQL runs one InfluxQL statement through /query and returns its result.
func influxQL(ctx context.Context, method, baseURL, user, pass, db, q string) (*queryResult, error) {
	params := url.Values{"q": {q}}
	if db != "" {
		params.Set("db", db)
	}
	endpoint := strings.TrimSuffix(baseURL, "/") + "/query"
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader(params.Encode())
	} else {
		endpoint += "?" + params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, endpoint, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	var out struct {
		Error   string        `json:"error"`
		Results []queryResult `json:"results"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("HTTP %d: undecodable response %.200q: %w", resp.StatusCode, raw, err)
	}
	if out.Error != "" {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, out.Error)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200q", resp.StatusCode, raw)
	}
	if len(out.Results) == 0 {
		return &queryResult{}, nil
	}
	if out.Results[0].Error != "" {
		return nil, fmt.Errorf("%s", out.Results[0].Error)
	}
	return &out.Results[0], nil
}

// quoteIdent quotes an InfluxQL identifier.
func quoteIdent(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// quoteString quotes an InfluxQL string literal.
func quoteString(s string) string {
	return `'` + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + `'`
}
