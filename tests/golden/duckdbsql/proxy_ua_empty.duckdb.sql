SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) = lower(''), false);
