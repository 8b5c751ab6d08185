-- Argo CD health of a modelops.dev/ModelDeployment, read from the conditions the operator writes
-- (kstatus: Ready, Reconciling, Stalled) and its rollout phase.
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

-- The measurement that failed the last analysis, when that analysis is what stopped the rollout
-- (a rollback by `modelops rollout abort` has none).
local function failedMeasurement(status)
  if type(status.analysisRuns) ~= "table" or #status.analysisRuns == 0 then
    return nil
  end
  local run = status.analysisRuns[#status.analysisRuns]
  if type(run) ~= "table" or run.phase ~= "Failed" or type(run.measurements) ~= "table" then
    return nil
  end
  if status.failedVersion ~= nil and run.version ~= status.failedVersion then
    return nil
  end
  for j = #run.measurements, 1, -1 do
    local m = run.measurements[j]
    if type(m) == "table" and (m.phase == "Failed" or m.phase == "Error") then
      return m
    end
  end
  return nil
end

-- Degraded; when an analysis stopped the rollout, the message names the failed metric first.
local function degraded(status, why)
  hs.status = "Degraded"
  hs.message = why
  local m = failedMeasurement(status)
  if m ~= nil and (status.phase == "RolledBack" or status.phase == "Degraded") then
    hs.message = text(status.phase, "Degraded") .. ": metric " .. text(m.name, "?") .. " failed: "
      .. text(m.message, text(m.phase, ""))
    if status.phase == "RolledBack" and type(status.stableVersion) == "string" then
      hs.message = hs.message .. "; 100% back on " .. status.stableVersion
    end
    if type(status.failedVersion) == "string" then
      hs.message = hs.message .. "; " .. status.failedVersion .. " waits for the retry action or a spec change"
    end
  end
  return hs
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

-- 2. The operator has not looked at this generation yet: the status describes an older spec.
local status = obj.status
if type(status) ~= "table" or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe the ModelDeployment"
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
local readyMessage = ""
if ready ~= nil then
  readyMessage = text(ready.message, "")
end

-- 3. A terminal error that needs a person: invalid spec, rolled back, failed analysis, missing
--    Secret or Gateway, deadline exceeded. An inconclusive analysis waits for a person's verdict
--    (promote or abort) and is shown as a pause.
if isTrue(stalled) and stalled.reason ~= "AnalysisInconclusive" then
  return degraded(status, join(text(stalled.reason, "Stalled"), text(stalled.message, readyMessage)))
end

-- 4. Paused: a pause step, `modelops rollout pause`, spec.paused, or an inconclusive analysis.
if status.phase == "Paused" then
  hs.status = "Suspended"
  if ready ~= nil then
    hs.message = join(text(ready.reason, "Paused"), readyMessage)
  else
    hs.message = "Rollout is paused"
  end
  return hs
end

if status.phase == "RolledBack" or status.phase == "Degraded" then
  return degraded(status, join(text(status.phase, "Degraded"), text(status.message, readyMessage)))
end

if isTrue(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling.message, "Rollout in progress")
  return hs
end

if isTrue(ready) then
  hs.status = "Healthy"
  hs.message = readyMessage
  return hs
end

hs.status = "Progressing"
if ready ~= nil then
  hs.message = join(text(ready.reason, "NotReady"), readyMessage)
else
  hs.message = "Waiting for the operator to report readiness"
end
return hs
