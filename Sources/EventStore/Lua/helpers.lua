-- Helpers both Redis Function libraries embed: a library is loaded on its
-- own and cannot call another's locals, so this file is included into each
-- where a line reads `--#include helpers.lua`.

-- Redis calls take their arguments from Lua's stack, which holds about
-- 8,000 values: lists of any length go out in chunks of at most CHUNK values
-- (an even number, so a chunk never splits a field/value or score/member pair).
local CHUNK = 1000

local function call_chunked(command, key, values)
  for first = 1, #values, CHUNK do
    redis.call(command, key, unpack(values, first, math.min(first + CHUNK - 1, #values)))
  end
end

-- The value of `name` in a stream entry's flat field list.
local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

local function hmget_chunked(key, fields)
  local values = {}
  for first = 1, #fields, CHUNK do
    local chunk = redis.call('HMGET', key, unpack(fields, first, math.min(first + CHUNK - 1, #fields)))
    for _, value in ipairs(chunk) do values[#values + 1] = value end
  end
  return values
end

local function is_string_list(list)
  if type(list) ~= 'table' then return false end
  for _, item in ipairs(list) do
    if type(item) ~= 'string' then return false end
  end
  return true
end

local function optional_string(value)
  return value == nil or value == cjson.null or type(value) == 'string'
end
