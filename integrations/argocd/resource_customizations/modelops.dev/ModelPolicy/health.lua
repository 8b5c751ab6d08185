-- Argo CD health of a modelops.dev/ModelPolicy, read from the conditions the operator writes
-- (kstatus: Ready, Reconciling, Stalled) and status.message (the policy in one line).
-- A policy whose gates refuse a version is Healthy: the policy works, the refusal shows on the
-- ModelVersion (StageSynced=False, ValidationFailed).
-- Runs in Argo CD's sandboxed gopher-lua VM: base and table libraries only (no string, math, os).
-- Never errors on a partial object: every field may be missing.
local hs = {}

local function condition(status, ctype)
  if type(status) ~= "table" or type(status.conditions) ~= "table" then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if type(c) == "table" and c.type == ctype then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

local function text(value, default)
  if type(value) == "string" and value ~= "" then
    return value
  end
  return default
end

-- "Reason: message", or the reason alone when there is no message.
local function join(reason, message)
  if message == nil or message == "" then
    return reason
  end
  return reason .. ": " .. message
end

local metadata = obj.metadata
if type(metadata) ~= "table" then
  metadata = {}
end

-- 1. Being deleted: nothing else matters (Argo CD's built-ins do the same).
if metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Pending deletion"
  return hs
end

-- 2. The operator has not looked at this generation yet (the gates it applies may be the old ones).
local status = obj.status
if type(status) ~= "table" or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to read the policy"
  return hs
end
local observed = tonumber(status.observedGeneration)
local generation = tonumber(metadata.generation)
if observed ~= nil and generation ~= nil and observed ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. tostring(generation)
    .. " (observed " .. tostring(observed) .. ")"
  return hs
end

local ready = condition(status, "Ready")
local stalled = condition(status, "Stalled")
local reconciling = condition(status, "Reconciling")

-- 3. Needs a person: the policy does not parse (every promotion of the model is refused meanwhile).
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = join(text(stalled.reason, "Stalled"), text(stalled.message, ""))
  return hs
end

-- 4. The operator never leaves a policy Reconciling today; read it as kstatus does.
if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling.message, "Applying the policy")
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = text(status.message, text(ready.message, "Active"))
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = join(text(ready.reason, "NotReady"), text(ready.message, ""))
else
  hs.message = "Waiting for the operator to read the policy"
end
return hs
