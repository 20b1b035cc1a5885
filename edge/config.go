package edge

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Config holds the worker's limits and access rules. Zero fields take the
// defaults (see New); ConfigFromEnv reads it from Worker variables.
type Config struct {
	// DefaultModel is the model a request without "model" runs on; empty:
	// the first model loaded.
	DefaultModel string

	MaxBodyBytes   int64 // request body, checked before parsing (default 64 KiB)
	MaxPromptBytes int   // prompt, checked before tokenizing (default 16 KiB)
	MaxTokens      int   // largest max_tokens accepted (default 256)
	// WorkBudget bounds the work of one request in multiply-adds, counted
	// as the model's parameters per position (prompt and generated tokens
	// alike). When the next position would pass it, the completion ends
	// with finish_reason "length". Default: DefaultWorkBudget.
	WorkBudget int64
	// MaxSessions bounds generations running at once in this isolate
	// (streams overlap); past it requests get 503 (default 64).
	MaxSessions int

	// MaxEmbedInputs bounds the texts of one POST /v1/embeddings (default
	// 64); each text is at most MaxPromptBytes and the model's context.
	MaxEmbedInputs int
	// MaxEmbedTokens bounds the tokens of one embeddings request, all
	// texts together, [CLS] and [SEP] included (default 2048): the
	// embeddings' work budget (the encoder's cost is about linear in it).
	MaxEmbedTokens int

	// AllowedOrigins lists the origins browsers may call from; "*" allows
	// any. Empty: DefaultOrigins.
	AllowedOrigins []string
	// APIKey, when set, is the bearer token every /v1/ request must carry.
	// It comes from a Worker secret (MOTE_API_KEY), never from the bundle.
	APIKey string
}

// Defaults for Config.
const (
	DefaultMaxBodyBytes   = 64 << 10
	DefaultMaxPromptBytes = 16 << 10
	DefaultMaxTokens      = 256
	// DefaultWorkBudget is 2^27 multiply-adds: 516 positions of the
	// default model (stories260K, 260,032 parameters), its whole 512-token
	// context, so 256 tokens after any prompt that fits beside them.
	DefaultWorkBudget  = 1 << 27
	DefaultMaxSessions = 64
	// DefaultMaxEmbedInputs and DefaultMaxEmbedTokens: 2048 tokens of
	// all-MiniLM-L6-v2 take about 6 s in workerd with SIMD (2.5-3 ms a
	// token, measured: docs/EDGE.md); a paid Worker's default CPU limit is 30 s.
	DefaultMaxEmbedInputs = 64
	DefaultMaxEmbedTokens = 2048
	// Hard ceilings on what a Config may ask for.
	maxBodyCeiling    = 16 << 20
	maxSessionCeiling = 4096
	maxEmbedInputsCap = 2048 // OpenAI's own limit on inputs per request
	maxEmbedTokensCap = 1 << 20
	maxStopStrings    = 4
	maxStopBytes      = 256
)

// DefaultOrigins allows browser calls from any origin: the API carries no
// cookies, and a deployment that wants fewer sets MOTE_CORS_ORIGINS.
var DefaultOrigins = []string{"*"}

// Env names read by ConfigFromEnv.
const (
	EnvModelName      = "MOTE_MODEL_NAME"
	EnvMaxBodyBytes   = "MOTE_MAX_BODY_BYTES"
	EnvMaxPromptBytes = "MOTE_MAX_PROMPT_BYTES"
	EnvMaxTokens      = "MOTE_MAX_TOKENS"
	EnvWorkBudget     = "MOTE_WORK_BUDGET"
	EnvMaxSessions    = "MOTE_MAX_SESSIONS"
	EnvMaxEmbedInputs = "MOTE_MAX_EMBED_INPUTS"
	EnvMaxEmbedTokens = "MOTE_MAX_EMBED_TOKENS"
	EnvCORSOrigins    = "MOTE_CORS_ORIGINS"
	EnvAPIKey         = "MOTE_API_KEY"
)

// ConfigFromEnv reads a Config from Worker variables (getenv returns "" for
// an unset one). A malformed value is an error: a typo in a limit must not
// silently fall back to a default.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := Config{DefaultModel: strings.TrimSpace(getenv(EnvModelName)), APIKey: getenv(EnvAPIKey)}
	ints := []struct {
		name string
		max  int64
		set  func(int64)
	}{
		{EnvMaxBodyBytes, maxBodyCeiling, func(v int64) { c.MaxBodyBytes = v }},
		{EnvMaxPromptBytes, maxBodyCeiling, func(v int64) { c.MaxPromptBytes = int(v) }},
		{EnvMaxTokens, 1 << 20, func(v int64) { c.MaxTokens = int(v) }},
		{EnvWorkBudget, math.MaxInt64, func(v int64) { c.WorkBudget = v }},
		{EnvMaxSessions, maxSessionCeiling, func(v int64) { c.MaxSessions = int(v) }},
		{EnvMaxEmbedInputs, maxEmbedInputsCap, func(v int64) { c.MaxEmbedInputs = int(v) }},
		{EnvMaxEmbedTokens, maxEmbedTokensCap, func(v int64) { c.MaxEmbedTokens = int(v) }},
	}
	for _, f := range ints {
		s := strings.TrimSpace(getenv(f.name))
		if s == "" {
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 1 || v > f.max {
			return Config{}, fmt.Errorf("%s=%q: want an integer in 1..%d", f.name, s, f.max)
		}
		f.set(v)
	}
	if s := strings.TrimSpace(getenv(EnvCORSOrigins)); s != "" {
		for _, o := range strings.Split(s, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, o)
			}
		}
	}
	return c, nil
}

// withDefaults fills zero fields and clamps the rest to the ceilings.
func (c Config) withDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	c.MaxBodyBytes = min(c.MaxBodyBytes, maxBodyCeiling)
	if c.MaxPromptBytes <= 0 {
		c.MaxPromptBytes = DefaultMaxPromptBytes
	}
	if c.MaxTokens <= 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.WorkBudget <= 0 {
		c.WorkBudget = DefaultWorkBudget
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	c.MaxSessions = min(c.MaxSessions, maxSessionCeiling)
	if c.MaxEmbedInputs <= 0 {
		c.MaxEmbedInputs = DefaultMaxEmbedInputs
	}
	c.MaxEmbedInputs = min(c.MaxEmbedInputs, maxEmbedInputsCap)
	if c.MaxEmbedTokens <= 0 {
		c.MaxEmbedTokens = DefaultMaxEmbedTokens
	}
	c.MaxEmbedTokens = min(c.MaxEmbedTokens, maxEmbedTokensCap)
	if len(c.AllowedOrigins) == 0 {
		c.AllowedOrigins = DefaultOrigins
	}
	return c
}
