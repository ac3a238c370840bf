SELECT *
FROM websession
WHERE coalesce(lower(CAST("Url" AS VARCHAR)) LIKE lower('%/checkupdate.php%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%lng=%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%ver=%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%beta=%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%type=%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%rmode=%') ESCAPE '\' AND lower(CAST("UrlQuery" AS VARCHAR)) LIKE lower('%product=%') ESCAPE '\', false);
