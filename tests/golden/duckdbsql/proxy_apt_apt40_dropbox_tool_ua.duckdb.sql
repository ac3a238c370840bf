SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) = lower('Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36') AND lower(CAST("DstHostname" AS VARCHAR)) = lower('api.dropbox.com'), false);
