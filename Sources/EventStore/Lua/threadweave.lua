#!lua name=threadweave
-- ThreadWeave's server-side functions. Every function touches only the keys
-- it is given, and callers pass keys of one hash tag, so each call is
-- single-slot and runs unchanged on Redis Cluster.

local LIBRARY_VERSION = '3'

-- The version of a thread is the ID of its stream's last entry (`<v>-0`).
local function last_version(stream)
  local last = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', 1)
  if #last == 0 then return 0 end
  return tonumber(string.match(last[1][1], '^(%d+)-'))
end

--#include helpers.lua

-- The write-side message index records an event owes, as a flat field/value
-- list, or nil and a reason. Reads only: append plans every write before the
-- first one, since Redis keeps a function's earlier writes when it fails.
-- `planned` holds records earlier events of the same call will write.
local function plan_index(msgidx, event_type, data, planned)
  if event_type ~= 'MessagesAdded' and event_type ~= 'MessagesRemoved' then return {} end
  local ok, payload = pcall(cjson.decode, data)
  if not ok or type(payload) ~= 'table' then return nil, 'data is not a JSON object' end
  local writes = {}
  if event_type == 'MessagesAdded' then
    if type(payload.messages) ~= 'table' then return nil, 'messages is not a list' end
    for _, message in ipairs(payload.messages) do
      if type(message) ~= 'table' or type(message.id) ~= 'string' or type(message.senderId) ~= 'string'
        or not optional_string(message.replyTo) then
        return nil, 'a message lacks its id or sender'
      end
      local record = { senderId = message.senderId, removed = false }
      if type(message.replyTo) == 'string' then record.replyTo = message.replyTo end
      planned[message.id] = record
      writes[#writes + 1] = message.id; writes[#writes + 1] = cjson.encode(record)
    end
  else
    if not is_string_list(payload.messageIds) then return nil, 'messageIds is not a list of ids' end
    local existing = {}
    if #payload.messageIds > 0 then existing = hmget_chunked(msgidx, payload.messageIds) end
    for i, id in ipairs(payload.messageIds) do
      local record = planned[id]
      if record == nil and existing[i] then
        local decoded, stored = pcall(cjson.decode, existing[i])
        if not decoded or type(stored) ~= 'table' then return nil, 'message index record of ' .. id .. ' is not JSON' end
        record = stored
      end
      if record ~= nil then
        record.removed = true
        planned[id] = record
        writes[#writes + 1] = id; writes[#writes + 1] = cjson.encode(record)
      end
    end
  end
  return writes
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
-- Every check comes before the first write: an error leaves nothing written.
local function append(keys, args)
  local stream, log, idem, msgidx = keys[1], keys[2], keys[3], keys[4]
  local expected = tonumber(args[1])
  local thread, cmd, at, actor = args[2], args[3], args[4], args[5]
  local fingerprint, result, ttl = args[6], args[7], tonumber(args[8])
  local count = tonumber(args[9])
  if expected == nil or ttl == nil or count == nil or count < 1 or #args ~= 9 + 2 * count then
    return redis.error_reply('ERR tw_append: malformed arguments')
  end

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

  local index_writes, planned = {}, {}
  for i = 0, count - 1 do
    local writes, reason = plan_index(msgidx, args[10 + 2 * i], args[11 + 2 * i], planned)
    if writes == nil then
      return redis.error_reply('ERR tw_append: event ' .. (i + 1) .. ' of ' .. count .. ': ' .. reason)
    end
    for _, value in ipairs(writes) do index_writes[#index_writes + 1] = value end
  end

  local version = expected
  for i = 0, count - 1 do
    local event_type, data = args[10 + 2 * i], args[11 + 2 * i]
    version = expected + i + 1
    redis.call('XADD', stream, version .. '-0',
      'type', event_type, 'at', at, 'actor', actor, 'cmd', cmd, 'data', data)
    redis.call('XADD', log, '*', 'thread', thread, 'version', version,
      'type', event_type, 'at', at, 'actor', actor, 'cmd', cmd, 'data', data)
  end
  call_chunked('HSET', msgidx, index_writes)

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
  -- A caller's state newer than the stream (the stream was dropped, or lost its
  -- tail in a crash) is no base: load as a caller without one, from the snapshot.
  if known > 0 and last_version(stream) < known then known = 0 end
  local base, state = known, false
  if known == 0 then
    local snapshot = redis.call('HMGET', snap, 'version', 'state')
    if snapshot[1] then
      base, state = tonumber(snapshot[1]), snapshot[2]
    end
  end
  local events = redis.call('XRANGE', stream, (base + 1) .. '-0', '+')
  local ids = {}
  for i = 2, #args do ids[#ids + 1] = args[i] end
  return { base, state, events, hmget_chunked(msgidx, ids), idempotency_record(idem) }
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
