-- Dependency graphs: cycle detection (members named in order) and a topological order.
-- Nodes are any values; deps(node) gives the nodes it depends on.
local M = {}

--- A cycle as an array of nodes (first repeated last), or nil. Iterative DFS: recipes
--- with thousands of resources must not overflow the C stack.
function M.cycle(nodes, deps)
  local color = {} -- nil white, 1 on the path, 2 done
  -- the walk's stacks, empty again after each start's walk: shared by all of them (a new
  -- pair per start was garbage for every resource of a recipe)
  local path, iters = {}, {}
  for _, start in ipairs(nodes) do
    if not color[start] then
      path[1], iters[1] = start, 1
      color[start] = 1
      while #path > 0 do
        local node = path[#path]
        local list = deps(node)
        local i = iters[#path]
        local next_node = list[i]
        if next_node == nil then
          color[node] = 2
          path[#path], iters[#iters] = nil, nil
        else
          iters[#path] = i + 1
          if color[next_node] == 1 then
            local cycle, on = {}, false
            for _, n in ipairs(path) do
              if n == next_node then on = true end
              if on then cycle[#cycle + 1] = n end
            end
            cycle[#cycle + 1] = next_node
            return cycle
          elseif not color[next_node] then
            color[next_node] = 1
            path[#path + 1], iters[#iters + 1] = next_node, 1
          end
        end
      end
    end
  end
  return nil
end

--- Nodes in an order where each comes after its dependencies (ties keep input order).
--- Only dependencies that are in `nodes` count; an edge closing a cycle is ignored.
function M.order(nodes, deps)
  local member = {}
  for _, n in ipairs(nodes) do member[n] = true end
  local out, done = {}, {}
  -- the walk's stacks and its set of the nodes on the path, empty again after each start's
  -- walk: shared by all of them
  local path, iters, onpath = {}, {}, {}
  for _, start in ipairs(nodes) do
    if not done[start] then
      path[1], iters[1], onpath[start] = start, 1, true
      while #path > 0 do
        local node = path[#path]
        local list = deps(node)
        local i = iters[#path]
        local n = list[i]
        if n == nil then
          if not done[node] then done[node] = true; out[#out + 1] = node end
          onpath[node] = nil
          path[#path], iters[#iters] = nil, nil
        else
          iters[#path] = i + 1
          if member[n] and not done[n] and not onpath[n] then
            path[#path + 1], iters[#iters + 1] = n, 1
            onpath[n] = true
          end
        end
      end
    end
  end
  return out
end

--- True when `list` is sorted by `lt` (a table.sort comparator): a caller whose list is
--- often in order already checks in n - 1 calls before it sorts in n log n.
function M.in_order(list, lt)
  for i = 2, #list do
    if lt(list[i], list[i - 1]) then return false end
  end
  return true
end

return M
