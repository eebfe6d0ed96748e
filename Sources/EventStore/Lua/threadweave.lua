#!lua name=threadweave
-- ThreadWeave's server-side functions. Every function touches only the keys
-- it is given, and callers pass keys of one hash tag, so each call is
-- single-slot and runs unchanged on Redis Cluster.

local LIBRARY_VERSION = '7'

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

-- The commands of an append as {cmd, actor, fingerprint, result, ttl,
-- first (ARGV index of its first event type), count}, and the ARGV index
-- after the last, or nil when malformed.
local function parse_commands(args)
  local commands, position = {}, 5
  for _ = 1, tonumber(args[4]) or 0 do
    local command = {
      cmd = args[position], actor = args[position + 1], fingerprint = args[position + 2],
      result = args[position + 3], ttl = tonumber(args[position + 4]), count = tonumber(args[position + 5]),
      first = position + 6,
    }
    if command.cmd == nil or command.ttl == nil or command.count == nil or command.count < 1 then return nil end
    commands[#commands + 1] = command
    position = position + 6 + 2 * command.count
  end
  if #commands == 0 or position > #args + 1 then return nil end
  return commands, position
end

-- Keeps a thread's newest snapshot only.
local function keep_snapshot(snap, version, state)
  local current = tonumber(redis.call('HGET', snap, 'version') or '0')
  if version <= current then return 0 end
  redis.call('HSET', snap, 'version', version, 'state', state)
  return 1
end

-- Messages commute: an append whose events all add messages, decided at
-- version v, stays right after later events that also only add messages
-- (none of those changes who takes part, whether the thread lives, or
-- whether a message does). Its caller may then allow it to land after them
-- instead of conflicting, provided none of its message ids was taken
-- meanwhile; busy threads then take every post at the first attempt. A
-- longer gap than this, or any other event in it, is a conflict as before.
local REBASE_LIMIT = 256

-- The events after `expected` when an append may land after them: the
-- version this very append ended at when it is among them (sent again after
-- a lost reply: its first and last command ids `total` events apart), else
-- false and whether they all add messages.
local function events_since(stream, expected, commands, total)
  local later = redis.call('XRANGE', stream, (expected + 1) .. '-0', '+', 'COUNT', REBASE_LIMIT + total)
  local first_cmd, last_cmd = commands[1].cmd, commands[#commands].cmd
  local only_messages = #later <= REBASE_LIMIT
  for i, entry in ipairs(later) do
    local cmd = field(entry[2], 'cmd')
    if cmd == last_cmd and i >= total and field(later[i - total + 1][2], 'cmd') == first_cmd
      and (i == #later or field(later[i + 1][2], 'cmd') ~= last_cmd) then
      return tonumber(string.match(entry[1], '^(%d+)-'))
    end
    if field(entry[2], 'type') ~= 'MessagesAdded' then only_messages = false end
  end
  return false, only_messages
end

-- KEYS: thread stream, change log, message index, then one idempotency
--       record per command, then the partition's activity index, then
--       optionally the thread's snapshot
-- ARGV: expected version ("<v>+": the append adds messages only and may land
--       after later events that do too), thread id, at, command count, then per command:
--       command id, actor, fingerprint, result, idempotency ttl seconds
--       (0: keep no record), event count, then (type, data) per event; with
--       the snapshot key, then the snapshot's version and state: kept in the
--       same step when the append lands at exactly that version (where it was
--       decided) and it is newer than the stored one
-- Several commands go in at once (group commit): their events get
-- consecutive versions, each command its own command id and idempotency
-- record (its version: that of its last event).
-- Returns {'appended', version} | {'conflict', actual} |
--         {'duplicate', command index, version, result} | {'reused', command index, version}
-- (a duplicate or reused key appends nothing: the caller answers that command
-- and sends the others again).
-- An append sent again after a lost reply answers 'appended' as the first
-- time did (its last command id is on its last event), so any append may be
-- retried without an idempotency record.
-- The activity index (thread → `at` of its latest event) moves with the
-- stream in the same step, so list-threads can trust it without reading the
-- stream. Callers of library version 4 (a rolling upgrade) pass no activity
-- key: it is then the change log's sibling, same hash tag, same slot.
-- Every check comes before the first write: an error leaves nothing written.
local function append(keys, args)
  local stream, log, msgidx = keys[1], keys[2], keys[3]
  local expected_text, plus = string.match(args[1] or '', '^(%d+)(%+?)$')
  local expected, may_follow_messages = tonumber(expected_text), plus == '+'
  local thread, at = args[2], args[3]
  local commands, after = parse_commands(args)
  local snap, snapshot_version
  if commands ~= nil and #keys == 5 + #commands and after == #args - 1 then
    snap, snapshot_version = keys[5 + #commands], tonumber(args[after])
  elseif commands ~= nil and (#keys ~= 3 + #commands and #keys ~= 4 + #commands or after ~= #args + 1) then
    commands = nil
  end
  if expected == nil or commands == nil or (snap ~= nil and snapshot_version == nil) then
    return redis.error_reply('ERR tw_append: malformed arguments')
  end
  local activity = keys[4 + #commands] or string.gsub(log, ':log$', ':activity')

  local total = 0
  for _, command in ipairs(commands) do
    total = total + command.count
    for i = 0, command.count - 1 do
      if args[command.first + 2 * i] ~= 'MessagesAdded' then may_follow_messages = false end
    end
  end

  local actual = last_version(stream)
  -- This very append went in already (its reply was lost, and the caller
  -- sent it again): answer as the first time, append nothing. Checked before
  -- the idempotency records, which that first time wrote.
  local only_messages_since = false
  if actual > expected and may_follow_messages then
    local ended_at
    ended_at, only_messages_since = events_since(stream, expected, commands, total)
    if ended_at then return { 'appended', ended_at } end
  elseif actual > expected then
    local first = redis.call('XRANGE', stream, (expected + 1) .. '-0', (expected + total) .. '-0')
    if #first == total and field(first[total][2], 'cmd') == commands[#commands].cmd then
      return { 'appended', expected + total }
    end
  end

  for i, command in ipairs(commands) do
    if command.ttl > 0 then
      local record = idempotency_record(keys[3 + i])
      if record then
        if record[3] ~= command.fingerprint then return { 'reused', i, tonumber(record[1]) } end
        return { 'duplicate', i, tonumber(record[1]), record[2] }
      end
    end
  end

  if actual ~= expected and not only_messages_since then return { 'conflict', actual } end

  local index_writes, planned, number = {}, {}, 0
  for _, command in ipairs(commands) do
    for i = 0, command.count - 1 do
      number = number + 1
      local event_type, data = args[command.first + 2 * i], args[command.first + 2 * i + 1]
      local writes, reason = plan_index(msgidx, event_type, data, planned)
      if writes == nil then
        return redis.error_reply('ERR tw_append: event ' .. number .. ' of ' .. total .. ': ' .. reason)
      end
      for _, value in ipairs(writes) do index_writes[#index_writes + 1] = value end
    end
  end

  -- Posts only: none of their ids may be taken, at the expected version as
  -- after later messages (a caller may decide posts on a state it holds,
  -- without loading the message index: this check is then the only one).
  if may_follow_messages then
    local ids = {}
    for id in pairs(planned) do ids[#ids + 1] = id end
    for _, taken in ipairs(hmget_chunked(msgidx, ids)) do
      if taken then return { 'conflict', actual } end
    end
  end

  local version = actual
  for c, command in ipairs(commands) do
    for i = 0, command.count - 1 do
      local event_type, data = args[command.first + 2 * i], args[command.first + 2 * i + 1]
      version = version + 1
      redis.call('XADD', stream, version .. '-0',
        'type', event_type, 'at', at, 'actor', command.actor, 'cmd', command.cmd, 'data', data)
      redis.call('XADD', log, '*', 'thread', thread, 'version', version,
        'type', event_type, 'at', at, 'actor', command.actor, 'cmd', command.cmd, 'data', data)
    end
    if command.ttl > 0 then
      local idem = keys[3 + c]
      redis.call('HSET', idem, 'version', version, 'result', command.result, 'fingerprint', command.fingerprint)
      redis.call('EXPIRE', idem, command.ttl)
    end
  end
  call_chunked('HSET', msgidx, index_writes)
  redis.call('ZADD', activity, at, thread)
  -- The snapshot is the state decided at `expected`: it holds only where the events went there.
  if snap ~= nil and version == expected + total and version == snapshot_version then
    keep_snapshot(snap, version, args[after + 1])
  end
  return { 'appended', version }
end

-- The one-command append of library version 3, for processes of the
-- previous release during a rolling upgrade; drop it in the next version.
-- KEYS: thread stream, change log, idempotency record, message index
-- ARGV: expected version, thread id, command id, at, actor, fingerprint,
--       result, idempotency ttl seconds, event count, then (type, data) per event
-- Returns as version 3 did: {'appended', version} | {'conflict', actual} |
--         {'duplicate', version, result} | {'reused', version}
local function append_one(keys, args)
  local batch_args = { args[1], args[2], args[4], '1', args[3], args[5], args[6], args[7], args[8], args[9] }
  for i = 10, #args do batch_args[#batch_args + 1] = args[i] end
  local reply = append({ keys[1], keys[2], keys[4], keys[3] }, batch_args)
  if type(reply) ~= 'table' or reply[1] == 'appended' or reply[1] == 'conflict' or reply.err then return reply end
  if reply[1] == 'duplicate' then return { 'duplicate', reply[3], reply[4] } end
  return { 'reused', reply[3] }
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
-- Processes of the previous release save snapshots so; this one sends them
-- with the append. Drop it in the next version.
local function save_snapshot(keys, args)
  return keep_snapshot(keys[1], tonumber(args[1]), args[2])
end

local function library_version()
  return LIBRARY_VERSION
end

redis.register_function('tw_append_batch', append)
redis.register_function('tw_append', append_one)
redis.register_function { function_name = 'tw_load', callback = load, flags = { 'no-writes' } }
redis.register_function('tw_save_snapshot', save_snapshot)
redis.register_function { function_name = 'tw_version', callback = library_version, flags = { 'no-writes' } }
