-- S3's listing walk shared by ListObjects, ListObjectsV2 and ListObjectVersions: keys in
-- UTF-8 binary order after a marker, filtered by prefix, rolled up into CommonPrefixes at
-- the delimiter, at most max_keys entries (a common prefix counts as one).
local M = {}

--- keys: sorted list; opts: prefix, delimiter, after (exclusive), max_keys. Returns
--- entries {key=} or {prefix=}, truncated, and the last key or prefix returned.
function M.walk(keys, opts)
  local prefix, delim = opts.prefix or "", opts.delimiter
  if delim == "" then delim = nil end
  local after, max = opts.after, opts.max_keys or 1000
  local out, seen, last = {}, {}, nil
  local truncated = false
  for _, k in ipairs(keys) do
    if (not after or k > after) and k:sub(1, #prefix) == prefix then
      local cp
      if delim then
        local i = k:find(delim, #prefix + 1, true)
        if i then cp = k:sub(1, i + #delim - 1) end
      end
      if not (cp and seen[cp]) and not (cp and after and cp <= after) then
        if #out >= max then
          truncated = true
          break
        end
        if cp then
          seen[cp] = true
          out[#out + 1] = { prefix = cp }
          last = cp
        else
          out[#out + 1] = { key = k }
          last = k
        end
      end
    end
  end
  return out, truncated, last
end

--- The max-keys of a request: 1000 when absent; AWS caps at 1000.
function M.max_keys(v)
  if v == nil then return 1000 end
  if v < 0 then
    require("fo.sim.error").raise("InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647", 400)
  end
  return math.min(v, 1000)
end

return M
