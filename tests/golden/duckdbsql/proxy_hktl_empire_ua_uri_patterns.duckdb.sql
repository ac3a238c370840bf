SELECT *
FROM websession
WHERE coalesce(lower(CAST("HttpUserAgent" AS VARCHAR)) = lower('Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko') AND (lower(CAST("Url" AS VARCHAR)) = lower('/admin/get.php') OR lower(CAST("Url" AS VARCHAR)) = lower('/news.php') OR lower(CAST("Url" AS VARCHAR)) = lower('/login/process.php')) AND lower(CAST("HttpRequestMethod" AS VARCHAR)) = lower('POST'), false);
