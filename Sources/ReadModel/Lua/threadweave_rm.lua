#!lua name=threadweave_rm
-- ThreadWeave's read-model functions. The one invariant: a thread's hash
-- applies version v only when it holds v-1, and an account index entry keeps
-- the highest version that touched it, so any delivery order, redelivery or
-- crash point converges to what a full replay builds.

local LIBRARY_VERSION = '8'

-- JSON is assembled by hand where the read model stores it, so the bytes
-- never depend on Lua's table order and a replay writes identical values.
local function quote(text)
  return cjson.encode(text)
end

local function id_list(ids)
  local quoted = {}
  for i, id in ipairs(ids) do quoted[i] = quote(id) end
  return '[' .. table.concat(quoted, ',') .. ']'
end

local function participant_json(at, added_by)
  return '{"joinedAt":' .. at .. ',"addedBy":' .. quote(added_by) .. '}'
end

-- A message as the read model keeps it: without its id (the hash field
-- holds it) and without empty mentions, which every message would repeat;
-- about 48 bytes a message, kept for as long as the history. `full_message`
-- puts both back on reads.
local function message_json(message, at)
  local json = '{"senderId":' .. quote(message.senderId) .. ',"text":' .. quote(message.text)
  if message.replyTo ~= nil and message.replyTo ~= cjson.null then
    json = json .. ',"replyTo":' .. quote(message.replyTo)
  end
  if type(message.mentions) == 'table' and #message.mentions > 0 then
    json = json .. ',"mentions":' .. id_list(message.mentions)
  end
  return json .. ',"createdAt":' .. at .. '}'
end

-- The message JSON readers get (`id senderId text replyTo? mentions
-- createdAt`) from the kept one; kept ones written before library version 6
-- are whole already. A `"mentions":` outside the key cannot occur: inside a
-- JSON string every quote is escaped.
local function full_message(id, kept)
  if not kept or string.sub(kept, 1, 6) == '{"id":' then return kept end
  local mentions = ''
  if not string.find(kept, '"mentions":', 1, true) then mentions = '"mentions":[],' end
  return '{"id":' .. quote(id) .. ',' .. mentions .. string.sub(kept, 2)
end

--#include helpers.lua

local function join(view, ids, at, actor)
  for _, id in ipairs(ids) do
    redis.call('HSETNX', view, id, participant_json(at, actor))
  end
end

local function leave(view, ids)
  call_chunked('HDEL', view, ids)
end

-- Timeline scores: version * 1000 + position in the event (at most
-- MAX_MESSAGES messages per event), unique and in append order, so paging is stable.
local MAX_MESSAGES = 1000
local function timeline_score(version, index)
  return version * MAX_MESSAGES + index
end

-- Ids as the domain writes them: 26 characters of Crockford's base32, upper
-- case. The projector hands on an event's data as stored, so this is the one
-- place a hand-made or damaged change-log entry is stopped before it reaches
-- the read model.
local function is_id(value)
  return type(value) == 'string' and #value == 26 and string.find(value, '^[0-9A-HJKMNP-TV-Z]+$') ~= nil
end
local function is_id_list(list)
  if type(list) ~= 'table' then return false end
  for _, item in ipairs(list) do
    if not is_id(item) then return false end
  end
  return true
end
local function optional_id(value)
  return value == nil or value == cjson.null or is_id(value)
end
local function optional_id_list(value)
  return value == nil or value == cjson.null or is_id_list(value)
end

-- Why an event's data cannot be applied, or nil. apply checks this before
-- its first write: Redis keeps a function's earlier writes when it fails, and
-- the redelivered event would then be taken for a duplicate.
local function invalid_payload(event_type, payload)
  if event_type == 'ThreadCreated' then
    if not is_id(payload.creatorId) or type(payload.title) ~= 'string'
      or not optional_id(payload.parentThreadId) or not optional_string(payload.remarks)
      or not optional_id_list(payload.administratorIds) or not optional_id_list(payload.memberIds) then
      return 'ThreadCreated data lacks a field or has a wrong type'
    end
  elseif event_type == 'ThreadDestroyed' then
    return nil
  elseif event_type == 'AdministratorIdsJoined' or event_type == 'AdministratorIdsLeft'
    or event_type == 'MemberIdsJoined' or event_type == 'MemberIdsLeft' then
    if not is_id_list(payload.accountIds) then return event_type .. ' data has no list of account ids' end
  elseif event_type == 'MessagesAdded' then
    if type(payload.messages) ~= 'table' then return 'MessagesAdded data has no list of messages' end
    if #payload.messages >= MAX_MESSAGES then return 'MessagesAdded has more than ' .. (MAX_MESSAGES - 1) .. ' messages' end
    for _, message in ipairs(payload.messages) do
      if type(message) ~= 'table' or not is_id(message.id) or not is_id(message.senderId)
        or type(message.text) ~= 'string' or not optional_id(message.replyTo)
        or not optional_id_list(message.mentions) then
        return 'MessagesAdded has a message lacking a field or with a wrong type'
      end
    end
  elseif event_type == 'MessagesRemoved' then
    if not is_id_list(payload.messageIds) then return 'MessagesRemoved data has no list of message ids' end
  else
    return 'unknown event type ' .. event_type
  end
  return nil
end

-- Records, per account, the newest index operation this thread owes it
-- ('version|touch|at' or 'version|remove|at'). The projector carries them
-- out and settles them; a crash in between is repaired by the redelivery,
-- which finds them still here. Only membership events (create, join, leave,
-- destroy) change an account's index: a message costs the same in a thread
-- of 10,000 participants as in one of two, and list-threads orders by the
-- threads' own `updatedAt` when it reads.
local function owe_account_operations(admins, members, outbox, version, at, event_type, payload)
  if event_type == 'MessagesAdded' or event_type == 'MessagesRemoved' then return end
  local participants = {}
  for _, id in ipairs(redis.call('HKEYS', admins)) do participants[id] = true end
  for _, id in ipairs(redis.call('HKEYS', members)) do participants[id] = true end
  local operations = {}
  if event_type == 'ThreadDestroyed' then
    for id in pairs(participants) do operations[#operations + 1] = id; operations[#operations + 1] = version .. '|remove|' .. at end
  else
    for id in pairs(participants) do operations[#operations + 1] = id; operations[#operations + 1] = version .. '|touch|' .. at end
    if event_type == 'AdministratorIdsLeft' or event_type == 'MemberIdsLeft' then
      for _, id in ipairs(payload.accountIds) do
        if not participants[id] then operations[#operations + 1] = id; operations[#operations + 1] = version .. '|remove|' .. at end
      end
    end
  end
  call_chunked('HSET', outbox, operations)
end

-- KEYS: thread hash, administrators, members, messages, timeline, account outbox
-- ARGV: thread id, version, type, at, actor, data, '1' to report the outbox
-- Returns {'applied' | 'duplicate', version held now, outbox (flat) or {}} |
--         {'gap', version held} | {'rejected', version held, reason}
local function apply(keys, args)
  local thread, admins, members, messages, timeline, outbox = keys[1], keys[2], keys[3], keys[4], keys[5], keys[6]
  local thread_id, version, event_type, at, actor, data = args[1], tonumber(args[2]), args[3], args[4], args[5], args[6]
  local function owed()
    if args[7] == '1' then return redis.call('HGETALL', outbox) end
    return {}
  end
  local held = tonumber(redis.call('HGET', thread, 'version') or '0')
  if version <= held then return { 'duplicate', held, owed() } end
  if version > held + 1 then return { 'gap', held } end
  if (version == 1) ~= (event_type == 'ThreadCreated') then
    return { 'rejected', held, event_type .. ' cannot be version ' .. version }
  end

  local ok, payload = pcall(cjson.decode, data)
  if not ok or type(payload) ~= 'table' then return { 'rejected', held, 'data is not a JSON object' } end
  local invalid = invalid_payload(event_type, payload)
  if invalid then return { 'rejected', held, invalid } end

  if event_type == 'ThreadCreated' then
    local fields = { 'id', thread_id, 'creatorId', payload.creatorId, 'title', payload.title, 'createdAt', at, 'messageCount', 0 }
    if type(payload.parentThreadId) == 'string' then
      fields[#fields + 1] = 'parentThreadId'; fields[#fields + 1] = payload.parentThreadId
    end
    if type(payload.remarks) == 'string' then
      fields[#fields + 1] = 'remarks'; fields[#fields + 1] = payload.remarks
    end
    redis.call('HSET', thread, unpack(fields))
    if type(payload.administratorIds) == 'table' then join(admins, payload.administratorIds, at, actor) end
    if type(payload.memberIds) == 'table' then join(members, payload.memberIds, at, actor) end
  elseif event_type == 'ThreadDestroyed' then
    redis.call('HSET', thread, 'destroyedAt', at)
  elseif event_type == 'AdministratorIdsJoined' then
    join(admins, payload.accountIds, at, actor)
  elseif event_type == 'AdministratorIdsLeft' then
    leave(admins, payload.accountIds)
  elseif event_type == 'MemberIdsJoined' then
    join(members, payload.accountIds, at, actor)
  elseif event_type == 'MemberIdsLeft' then
    leave(members, payload.accountIds)
  elseif event_type == 'MessagesAdded' then
    local bodies, scores = {}, {}
    for index, message in ipairs(payload.messages) do
      bodies[#bodies + 1] = message.id; bodies[#bodies + 1] = message_json(message, at)
      scores[#scores + 1] = timeline_score(version, index - 1); scores[#scores + 1] = message.id
    end
    call_chunked('HSET', messages, bodies)
    call_chunked('ZADD', timeline, scores)
  elseif event_type == 'MessagesRemoved' then
    call_chunked('HDEL', messages, payload.messageIds)
    call_chunked('ZREM', timeline, payload.messageIds)
  end

  if event_type == 'MessagesAdded' or event_type == 'MessagesRemoved' then
    -- Who takes part is unchanged: the counts written by the last membership event stand.
    redis.call('HSET', thread, 'version', version, 'updatedAt', at, 'messageCount', redis.call('HLEN', messages))
  else
    redis.call('HSET', thread, 'version', version, 'updatedAt', at,
      'administratorCount', redis.call('HLEN', admins), 'memberCount', redis.call('HLEN', members),
      'messageCount', redis.call('HLEN', messages))
  end
  owe_account_operations(admins, members, outbox, version, at, event_type, payload)
  return { 'applied', version, owed() }
end

-- KEYS: account outbox; ARGV: (account id, operation) pairs carried out.
-- Deletes each only if unchanged, so a newer operation owed meanwhile stays.
local function settle(keys, args)
  local settled = 0
  for i = 1, #args, 2 do
    if redis.call('HGET', keys[1], args[i]) == args[i + 1] then
      redis.call('HDEL', keys[1], args[i])
      settled = settled + 1
    end
  end
  return settled
end

-- KEYS: account's threads (sorted set), account's versions (hash)
-- ARGV: thread id, version, 'touch' | 'remove', at
-- The versions hash keeps the highest version even after a removal, so a
-- late, older join can never resurrect an entry.
local function index_account(keys, args)
  local threads, versions = keys[1], keys[2]
  local thread_id, version, action, at = args[1], tonumber(args[2]), args[3], args[4]
  local known = tonumber(redis.call('HGET', versions, thread_id) or '0')
  if version <= known then return 0 end
  redis.call('HSET', versions, thread_id, version)
  if action == 'touch' then
    redis.call('ZADD', threads, at, thread_id)
  else
    redis.call('ZREM', threads, thread_id)
  end
  return 1
end

-- KEYS: timeline, messages; ARGV: after (a timeline score, or '' from the start), limit
-- Returns {messages JSON in timeline order, the last one's score or false when no more follow}.
-- A score stays a valid place when its message is removed, so paging goes on.
local function page_messages(keys, args)
  local timeline, messages = keys[1], keys[2]
  local after, limit = args[1], tonumber(args[2])
  local from = '-inf'
  if after ~= '' then from = '(' .. after end
  local page = redis.call('ZRANGE', timeline, from, '+inf', 'BYSCORE', 'LIMIT', 0, limit + 1, 'WITHSCORES')
  local ids, last = {}, false
  for i = 1, math.min(#page, 2 * limit), 2 do
    ids[#ids + 1] = page[i]
    last = page[i + 1]
  end
  if #page <= 2 * limit then last = false end
  local kept = hmget_chunked(messages, ids)
  for i, id in ipairs(ids) do kept[i] = full_message(id, kept[i]) end
  return { kept, last }
end

-- A thread's last activity as of the instant (unix ms): the `at` of its
-- latest event stamped at or before it; false when it has none (created
-- later). list-threads orders a whole paging by this, so each thread keeps one
-- place however active it is meanwhile. Usually the view answers (its
-- `updatedAt` is its latest event's `at` when it holds as many versions as the
-- stream); only a thread written since the instant, or one the read model is
-- behind on, walks its stream back, in growing steps.
local function activity_as_of(view, stream, instant)
  local held = redis.call('HMGET', view, 'updatedAt', 'version')
  local updated, version = tonumber(held[1]), tonumber(held[2])
  if updated and updated <= instant and redis.call('XLEN', stream) == version then return updated end
  local from, step = '+', 8
  while true do
    local entries = redis.call('XREVRANGE', stream, from, '-', 'COUNT', step)
    for _, entry in ipairs(entries) do
      local at = tonumber(field(entry[2], 'at'))
      if at and at <= instant then return at end
    end
    if #entries < step then return false end
    from = '(' .. entries[#entries][1]
    step = math.min(step * 4, 512)
  end
end

-- KEYS: thread view, thread stream, for each of some threads of one partition
-- (one slot); ARGV: instant (unix ms). Each thread's activity as of the
-- instant (nil for none), in order: one call per partition, not per thread,
-- keeps list-threads' cost for an account in 1,000 threads in a few calls.
local function activities_as_of(keys, args)
  local instant = tonumber(args[1])
  local activities = {}
  for i = 1, #keys - 1, 2 do
    activities[#activities + 1] = activity_as_of(keys[i], keys[i + 1], instant)
  end
  return activities
end

-- A log entry has a handful of fields; the bound keeps XADD's arguments on Lua's stack.
local MAX_ENTRY_FIELDS = 64

-- KEYS: change log, dead letters; ARGV: entry id, reason, then the entry's fields.
-- Moves one log entry to the dead letters and acks it, in one step.

local function dead_letter(keys, args)
  local log, dead = keys[1], keys[2]
  local id, reason = args[1], args[2]
  if #args < 2 or #args % 2 ~= 0 or #args > 2 + 2 * MAX_ENTRY_FIELDS then
    return redis.error_reply('ERR tw_rm_dead_letter: expected an id, a reason and at most ' .. MAX_ENTRY_FIELDS .. ' field pairs')
  end
  local fields = { unpack(args, 3) }
  fields[#fields + 1] = 'reason'; fields[#fields + 1] = reason
  fields[#fields + 1] = 'originalId'; fields[#fields + 1] = id
  redis.call('XADD', dead, '*', unpack(fields))
  return redis.call('XACK', log, 'rmu', id)
end

-- KEYS: dead letters, change log; ARGV: dead-letter entry id.
-- Re-adds the original fields to the log and drops the dead letter, in one step.
local function replay_dead_letter(keys, args)
  local dead, log = keys[1], keys[2]
  local entries = redis.call('XRANGE', dead, args[1], args[1])
  if #entries == 0 then return false end
  local original = {}
  local fields = entries[1][2]
  for i = 1, #fields, 2 do
    if fields[i] ~= 'reason' and fields[i] ~= 'originalId' then
      original[#original + 1] = fields[i]; original[#original + 1] = fields[i + 1]
    end
  end
  if #original == 0 or #original > 2 * MAX_ENTRY_FIELDS then
    return redis.error_reply('ERR tw_rm_replay_dead_letter: the dead letter has no fields or too many')
  end
  local id = redis.call('XADD', log, '*', unpack(original))
  redis.call('XDEL', dead, args[1])
  return id
end

-- KEYS: lock; ARGV: token, ttl ms. Extends the lock only while we hold it.
local function renew_lock(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  return redis.call('PEXPIRE', keys[1], args[2])
end

-- KEYS: lock; ARGV: token. Releases the lock only if we hold it.
local function release_lock(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  return redis.call('DEL', keys[1])
end

local function library_version()
  return LIBRARY_VERSION
end

redis.register_function('tw_rm_apply', apply)
redis.register_function('tw_rm_settle', settle)
redis.register_function('tw_rm_index_account', index_account)
redis.register_function { function_name = 'tw_rm_page_messages', callback = page_messages, flags = { 'no-writes' } }
redis.register_function { function_name = 'tw_rm_activities_as_of', callback = activities_as_of, flags = { 'no-writes' } }
redis.register_function('tw_rm_dead_letter', dead_letter)
redis.register_function('tw_rm_replay_dead_letter', replay_dead_letter)
redis.register_function('tw_rm_renew_lock', renew_lock)
redis.register_function('tw_rm_release_lock', release_lock)
redis.register_function { function_name = 'tw_rm_version', callback = library_version, flags = { 'no-writes' } }
