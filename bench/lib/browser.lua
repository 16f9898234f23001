-- Browser-like requests (scripts/pgo's training; none of bench/proxy.sh's scenarios): varied
-- paths and query strings, a dozen fields, cookies. Most answers are 404s.
local paths = {"/app/cart?id=", "/static/js/main.js?v=", "/api/v2/orders/", "/login?next=/account&t="}
local i = 0
request = function()
  i = i + 1
  local path = paths[(i % #paths) + 1] .. i
  local headers = {
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    ["Accept"] = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    ["Accept-Language"] = "en-GB,en;q=0.9,de;q=0.8",
    ["Accept-Encoding"] = "gzip, deflate, br, zstd",
    ["Referer"] = "https://shop.example.com/app/catalogue?page=" .. (i % 50),
    ["Cookie"] = "JSESSIONID=8F3A2C1D9E7B6A5F4E3D2C1B0A9F8E7D.node" .. (i % 2) .. "; _ga=GA1.2.1234567890.1700000000; theme=dark; consent=yes",
    ["Sec-Fetch-Dest"] = "document", ["Sec-Fetch-Mode"] = "navigate", ["Sec-Fetch-Site"] = "same-origin",
    ["Upgrade-Insecure-Requests"] = "1", ["Cache-Control"] = "max-age=0",
  }
  return wrk.format("GET", path, headers)
end
