/// The `threadweave` Redis Function library (Lua), loaded by `threadweave setup`
/// and re-loaded by any process that finds it missing. Kept in Swift so the
/// binary carries it: no resource bundle to ship next to the executable.
public enum ThreadweaveLibrary {
    public static let name = "threadweave"
    /// Bump with every change to `source`; `threadweave setup` records it in `tw:config`.
    public static let version = "2"

    public static let source = #"""
#!lua name=threadweave
-- ThreadWeave's server-side functions. Every function touches only the keys
-- it is given, and callers pass keys of one hash tag, so each call is
-- single-slot and runs unchanged on Redis Cluster.

local LIBRARY_VERSION = '\#(version)'

-- The version of a thread is the ID of its stream's last entry (`<v>-0`).
local function last_version(stream)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return 0 end
  return tonumber(string.match(last[1][1], '^(%d+)-'))
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- Keeps the write-side message index in step with the events, so loading a
-- command's state costs the same whatever the thread's length.
local function index_messages(msgidx, event_type, data)
  if event_type == 'MessagesAdded' then
    local payload = cjson.decode(data)
    for _, message in ipairs(payload.messages) do
      local record = { senderId = message.senderId, removed = false }
      if message.replyTo ~= nil and message.replyTo ~= cjson.null then record.replyTo = message.replyTo end
      redis.call('HSET', msgidx, message.id, cjson.encode(record))
    end
  elseif event_type == 'MessagesRemoved' then
    local payload = cjson.decode(data)
    for _, id in ipairs(payload.messageIds) do
      local existing = redis.call('HGET', msgidx, id)
      if existing then
        local record = cjson.decode(existing)
        record.removed = true
        redis.call('HSET', msgidx, id, cjson.encode(record))
      end
    end
  end
end

local function idempotency_record(idem)
  if idem == nil or redis.call('EXISTS', idem) == 0 then return false end
  return redis.call('HMGET', idem, 'version', 'result', 'fingerprint')
end

-- KEYS: thread stream, change log, idempotency record, message index
-- ARGV: expected version, thread id, command id, at, actor, fingerprint,
--       result, idempotency ttl seconds (0: keep no record), event count,
--       then (type, data) per event
-- Returns {'appended', version} | {'conflict', actual} |
--         {'duplicate', version, result} | {'reused', version}
-- An append sent again after a lost reply answers 'appended' as the first
-- time did (its command id is on the events it wrote), so any append may be
-- retried without an idempotency record.
local function append(keys, args)
  local stream, log, idem, msgidx = keys[1], keys[2], keys[3], keys[4]
  local expected = tonumber(args[1])
  local thread, cmd, at, actor = args[2], args[3], args[4], args[5]
  local fingerprint, result, ttl = args[6], args[7], tonumber(args[8])
  local count = tonumber(args[9])

  if ttl > 0 then
    local record = idempotency_record(idem)
    if record then
      if record[3] ~= fingerprint then return { 'reused', tonumber(record[1]) } end
      return { 'duplicate', tonumber(record[1]), record[2] }
    end
  end

  local actual = last_version(stream)
  if actual ~= expected then
    -- This very append went in already (its reply was lost, and the caller
    -- sent it again): answer as the first time, append nothing.
    local first = actual > expected and redis.call('XRANGE', stream, (expected + 1) .. '-0', (expected + count) .. '-0')
    if first and #first == count and field(first[count][2], 'cmd') == cmd then
      return { 'appended', expected + count }
    end
    return { 'conflict', actual }
  end

  local version = expected
  for i = 0, count - 1 do
    local event_type, data = args[10 + 2 * i], args[11 + 2 * i]
    version = expected + i + 1
    redis.call('XADD', stream, version .. '-0',
      'type', event_type, 'at', at, 'actor', actor, 'cmd', cmd, 'data', data)
    redis.call('XADD', log, '*', 'thread', thread, 'version', version,
      'type', event_type, 'at', at, 'actor', actor, 'cmd', cmd, 'data', data)
    index_messages(msgidx, event_type, data)
  end

  if ttl > 0 then
    redis.call('HSET', idem, 'version', version, 'result', result, 'fingerprint', fingerprint)
    redis.call('EXPIRE', idem, ttl)
  end
  return { 'appended', version }
end

-- KEYS: thread stream, snapshot, message index, idempotency record
-- ARGV: known version (0: start from the snapshot), then message ids
-- Returns {snapshot version, snapshot state | nil, events after the base,
--          message index records (one per id, nil when absent),
--          idempotency record {version, result, fingerprint} | nil}
local function load(keys, args)
  local stream, snap, msgidx, idem = keys[1], keys[2], keys[3], keys[4]
  local known = tonumber(args[1])
  local base, state = known, false
  if known == 0 then
    local snapshot = redis.call('HMGET', snap, 'version', 'state')
    if snapshot[1] then
      base, state = tonumber(snapshot[1]), snapshot[2]
    end
  end
  local events = redis.call('XRANGE', stream, (base + 1) .. '-0', '+')
  local messages = {}
  if #args > 1 then
    messages = redis.call('HMGET', msgidx, unpack(args, 2))
  end
  return { base, state, events, messages, idempotency_record(idem) }
end

-- KEYS: snapshot; ARGV: version, state. Keeps the newest snapshot only.
local function save_snapshot(keys, args)
  local current = tonumber(redis.call('HGET', keys[1], 'version') or '0')
  local version = tonumber(args[1])
  if version <= current then return 0 end
  redis.call('HSET', keys[1], 'version', version, 'state', args[2])
  return 1
end

local function library_version()
  return LIBRARY_VERSION
end

redis.register_function('tw_append', append)
redis.register_function { function_name = 'tw_load', callback = load, flags = { 'no-writes' } }
redis.register_function('tw_save_snapshot', save_snapshot)
redis.register_function { function_name = 'tw_version', callback = library_version, flags = { 'no-writes' } }
"""#
}
