SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('CONNECT') AND (lower(CAST("Url" AS VARCHAR)) LIKE lower('%:22') ESCAPE '\' OR lower(CAST("Url" AS VARCHAR)) LIKE lower('%:21') ESCAPE '\') AND "HttpUserAgent" IS NULL, false);
