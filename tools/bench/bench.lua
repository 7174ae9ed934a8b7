-- wrk script of "make bench" (tools/bench/bench.mjs drives it).
--
-- Sends one fixed request (method, path, headers, body), optionally with
-- an approval token from a file, one token per line:
--
--   BENCH_METHOD        request method (default GET)
--   BENCH_PATH          request target, e.g. /es/refund?order=A17
--   BENCH_BODY          request body (default none)
--   BENCH_HEADERS       extra headers, "Name: value" lines
--   BENCH_TOKENS        token file (optional)
--   BENCH_TOKEN_MODE    "once": each token is sent once, in file order
--                       (single-use tokens; when they run out, requests go
--                       without a token and are counted as "exhausted");
--                       "cycle": the tokens are sent round and round
--   BENCH_TOKEN_HEADER  header that carries the token (Approval-Token)
--   BENCH_THREADS       wrk's -t: thread k of n takes lines k, k+n, ...
--
-- Every answer's status is counted per thread; done() prints one line
--
--   BENCH_RESULT {"requests":..., "statuses":{"200":...}, ...}
--
-- with wrk's summary, the latency percentiles (microseconds) and the
-- token counts, for the driver to parse.

local threads = {}
local counter = 0

function setup(thread)
    thread:set("tid", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

local function env(name, default)
    local v = os.getenv(name)
    if v == nil or v == "" then
        return default
    end
    return v
end

function init(args)
    method = env("BENCH_METHOD", "GET")
    path = env("BENCH_PATH", "/")
    body = os.getenv("BENCH_BODY")
    if body == "" then
        body = nil
    end

    headers = {}
    for line in string.gmatch(env("BENCH_HEADERS", ""), "[^\n]+") do
        local k, v = string.match(line, "^([^:]+):%s*(.*)$")
        if k then
            headers[k] = v
        end
    end

    token_header = env("BENCH_TOKEN_HEADER", "Approval-Token")
    mode = env("BENCH_TOKEN_MODE", "once")
    tokens = {}
    ntokens = 0
    next_token = 1
    exhausted = 0
    sent_tokens = 0
    counts = {}

    local file = env("BENCH_TOKENS", nil)
    if file then
        local nthreads = tonumber(env("BENCH_THREADS", "1"))
        local f = assert(io.open(file, "r"))
        local i = 0
        for line in f:lines() do
            if line ~= "" then
                if i % nthreads == tid then
                    ntokens = ntokens + 1
                    tokens[ntokens] = line
                end
                i = i + 1
            end
        end
        f:close()
        if ntokens == 0 then
            error("no tokens for thread " .. tid .. " in " .. file)
        end
    end

    if ntokens == 0 then
        fixed = wrk.format(method, path, headers, body)
    end
end

function request()
    if fixed then
        return fixed
    end

    if next_token > ntokens then
        if mode == "cycle" then
            next_token = 1
        else
            exhausted = exhausted + 1
            headers[token_header] = nil
            return wrk.format(method, path, headers, body)
        end
    end

    headers[token_header] = tokens[next_token]
    next_token = next_token + 1
    sent_tokens = sent_tokens + 1
    return wrk.format(method, path, headers, body)
end

function response(status, hdrs, b)
    counts[status] = (counts[status] or 0) + 1
end

local function json_counts(t)
    local parts = {}
    for k, v in pairs(t) do
        table.insert(parts, string.format('"%d":%d', k, v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
    local total = {}
    local ex, sent, ntok = 0, 0, 0
    for _, t in ipairs(threads) do
        local c = t:get("counts") or {}
        for k, v in pairs(c) do
            total[k] = (total[k] or 0) + v
        end
        ex = ex + (t:get("exhausted") or 0)
        sent = sent + (t:get("sent_tokens") or 0)
        ntok = ntok + (t:get("ntokens") or 0)
    end

    -- wrk's own CPU time (user + system, clock ticks), to tell whether
    -- the client was the bottleneck
    local wrk_ticks = -1
    local f = io.open("/proc/self/stat", "r")
    if f then
        local st = f:read("*l") or ""
        f:close()
        local rest = string.match(st, "%) (.*)$")
        if rest then
            local fields = {}
            for x in string.gmatch(rest, "%S+") do
                table.insert(fields, x)
            end
            -- fields[1] is stat field 3; utime and stime are 14 and 15
            wrk_ticks = tonumber(fields[12]) + tonumber(fields[13])
        end
    end

    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,'
        .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,'
        .. '"timeout":%d},"latency_us":{"min":%d,"mean":%.1f,"p50":%d,'
        .. '"p90":%d,"p99":%d,"max":%d},"statuses":%s,"tokens_loaded":%d,'
        .. '"tokens_sent":%d,"exhausted":%d,"wrk_cpu_ticks":%d}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.min, latency.mean, latency:percentile(50),
        latency:percentile(90), latency:percentile(99), latency.max,
        json_counts(total), ntok, sent, ex, wrk_ticks))
end
