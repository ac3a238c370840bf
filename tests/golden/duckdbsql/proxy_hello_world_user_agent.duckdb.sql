SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) = lower('Hello-World/1.0') AND lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('GET'), false);
