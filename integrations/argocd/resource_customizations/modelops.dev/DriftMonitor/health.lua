-- Argo CD health of a modelops.dev/DriftMonitor, read from the conditions the operator writes
-- (kstatus: Ready, Reconciling, Stalled; and DriftDetected).
-- A monitor that found drift is Healthy: the monitor works, drift is its finding (in the message).
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

-- 2. The operator has not looked at this generation yet.
local status = obj.status
if type(status) ~= "table" or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to create the check CronJob"
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

-- 3. Needs a person: invalid spec, no reference data to compare with.
if isTrue(stalled) then
  hs.status = "Degraded"
  hs.message = join(text(stalled.reason, "Stalled"), text(stalled.message, ""))
  return hs
end

local spec = obj.spec
if type(spec) == "table" and spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Checks suspended (spec.suspend)"
  return hs
end

-- 4. Waiting for its target (a ModelDeployment without a stable version yet).
if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling.message, "Waiting for the target")
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  local drift = condition(status, "DriftDetected")
  if isTrue(drift) then
    hs.message = "Drift detected: " .. text(drift.message, "")
  elseif drift ~= nil then
    hs.message = "No drift: " .. text(drift.message, "")
  else
    hs.message = text(ready.message, "Monitoring")
  end
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = join(text(ready.reason, "NotReady"), text(ready.message, ""))
else
  hs.message = "Waiting for the operator to create the check CronJob"
end
return hs
