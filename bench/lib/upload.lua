-- The upload scenario of bench/proxy.sh (UPLOAD=1): a POST of 64 KiB in
-- 4 KiB chunks, as Java's HttpURLConnection sends in chunked streaming
-- mode. Built by hand: wrk.body would add a Content-Length beside the
-- chunking, a request every proxy must refuse.
local piece = string.format("%x\r\n", 4096) .. string.rep("x", 4096) .. "\r\n"
local wire = "POST /upload HTTP/1.1\r\nHost: bench\r\nTransfer-Encoding: chunked\r\n\r\n"
  .. string.rep(piece, 16) .. "0\r\n\r\n"

function request()
  return wire
end
