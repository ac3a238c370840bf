SELECT *
FROM websession
WHERE coalesce(lower(CAST("DstHostname" AS VARCHAR)) LIKE lower('%.mypikpak.com') ESCAPE '\' AND lower(CAST("HttpUserAgent" AS VARCHAR)) = lower('Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:129.0) Gecko/20100101 Firefox/129.0'), false);
